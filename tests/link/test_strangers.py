"""A record that only its name and date of birth hold in a person whose identifiers give another
date of birth goes out on its own (justice.link.strangers): a lender's record among a borrower's
goes; the person's own record at a new address, an alias record and a record a clerk or the
system ties there stay."""

from __future__ import annotations

import duckdb
import pytest
from small_people import changed, people

from justice.errors import ConfigError
from justice.link.clerical import ensure_decisions_table, write_review_queue
from justice.link.persons import cluster_labels, write_person_links

THRESHOLD = 5.0
Q = "2019/7654321"  # the borrower's PNC ID (core)
EVIDENCE = ["l.postcode = r.postcode",
            "l.system <> r.system and list_has_any(l.event_dates, r.event_dates)",
            "l.crn = r.crn"]
FAR = ("abs(datediff('day', l.dob, r.dob)) > 1826 "
       "and levenshtein(strftime(l.dob, '%Y%m%d'), strftime(r.dob, '%Y%m%d')) > 1")
BORROWER, LENDER = "1990-04-16", "1958-11-30"


def _world(records: dict[str, dict], links: list[tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    """Records `system:id` with a date of birth, PNC ID, prison number, postcode, event days and
    CRN, and the model's links between them (each pair in `links` at weight 10)."""
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
                   same_as varchar, dob date, pnc_core varchar, pnc_valid boolean, cro_core varchar,
                   cro_valid boolean, postcode varchar, event_dates date[], prison_number varchar,
                   prison_number_valid boolean, crn varchar)""")
    for u, r in sorted(records.items()):
        con.execute("insert into linkage.records values (?, ?, ?, ?, ?, ?, ?, null, null, ?, ?, ?, ?, ?)",
                    [u, u.split(":")[0], u.split(":")[1], r.get("same_as"), r.get("dob"), r.get("pnc"),
                     r.get("pnc") is not None, r.get("postcode"), r.get("days"), r.get("prison_number"),
                     r.get("prison_number") is not None, r.get("crn")])
    con.execute("""create table linkage.pairs (unique_id_l varchar, unique_id_r varchar, match_weight double,
                   match_probability double)""")
    if links:
        con.executemany("insert into linkage.pairs values (?, ?, 10.0, 0.999)",
                        [[min(a, b), max(a, b)] for a, b in links])
    ensure_decisions_table(con)
    return con


def _spec(**change) -> dict:
    return {"enabled": True, "identifiers": ["pnc_core", "cro_core", "prison_number"], "needs": ["dob", "postcode"],
            "far": FAR, "evidence": EVIDENCE, "share": 0.5, **change}


def _rules(**change) -> dict:
    return {"never_link": [{"column": "pnc_core", "valid": "pnc_valid"}], "hard_negatives": [],
            "identifier_links": [], "strangers": _spec(**change)}


# Borrower Q (born 1990): records X and Y hold his PNC ID, X at E2 2BB. Records A and B were
# given under lender M's name and date of birth (1958): A holds Q's PNC ID and address, and the
# model joins it to X by the PNC ID; B, with neither, is joined to A by the names. N is M's own
# record (M's address, no identifier), joined to A by the name and date of birth it shares.
def _borrowed(**change: dict | None) -> dict[str, dict]:
    records = {"court:X": {"dob": BORROWER, "pnc": Q, "postcode": "E2 2BB"},
               "prison:Y": {"dob": BORROWER, "pnc": Q, "prison_number": "A0237ZY"},
               "court:A": {"dob": LENDER, "pnc": Q, "postcode": "E2 2BB"},
               "court:B": {"dob": LENDER},
               "court:N": {"dob": LENDER, "postcode": "L1 2QF"}}
    return changed(records, change)


LINKS = [("court:X", "prison:Y"), ("court:A", "court:X"), ("court:A", "court:B"), ("court:A", "court:N")]


def test_a_lenders_record_among_the_borrowers_goes_out_on_its_own():
    con = _world(_borrowed(), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules(enabled=False))) == {frozenset("XYABN")}
    c = cluster_labels(con, THRESHOLD, _rules())
    assert people(c) == {frozenset("XYAB"), frozenset("N")}
    # Its links stay in the edge list, now between two people, and person_links leaves them out.
    write_person_links(con, THRESHOLD, "run-1", _rules())
    row = con.execute("select cluster_size, links, linked_by from linkage.person_links "
                      "where unique_id = 'court:N'").fetchall()
    assert row == [(1, 0, "unlinked")]
    # Its pair with the borrowed record it was joined by waits in the review queue, kept apart.
    con.execute("alter table linkage.records add column forename varchar; alter table linkage.records "
                "add column middle_names varchar; alter table linkage.records add column surname varchar; "
                "alter table linkage.records add column sex varchar; alter table linkage.records "
                "add column pnc varchar; alter table linkage.records add column cro varchar")
    thresholds = {"match_weight": THRESHOLD, "review_low": THRESHOLD - 4, "review_high": THRESHOLD + 4}
    assert write_review_queue(con, thresholds, _rules()) == 1
    assert con.execute("select unique_id_l, unique_id_r, reason, current_outcome from linkage.clerical_review"
                       ).fetchall() == [("court:A", "court:N", "put in two people by the clustering rules",
                                         "kept apart")]
    # A clerk's "match" puts it back, and the queue is empty.
    con.execute("insert into linkage.clerical_decisions values ('court:A', 'court:N', 'match', 'a clerk', "
                "now(), null)")
    write_person_links(con, THRESHOLD, "run-2", _rules())
    assert write_review_queue(con, thresholds, _rules()) == 0
    assert con.execute("select cluster_size from linkage.person_links where unique_id = 'court:N'"
                       ).fetchall() == [(5,)]


def test_the_persons_own_record_at_a_new_address_stays():
    # N is given under Q's own date of birth: his identifiers vouch for it, whatever the address.
    con = _world(_borrowed(court_N={"dob": BORROWER, "postcode": "L1 2QF"}), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}
    # Born a year from Q's (not far), or one digit from it: his still.
    for dob in ("1991-04-16", "1998-04-16"):
        con = _world(_borrowed(court_N={"dob": dob, "postcode": "L1 2QF"}), LINKS)
        assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}, dob


def test_a_record_that_meets_the_person_or_holds_an_identifier_stays():
    # At the borrower's address: an alias of his, given at home.
    for change in ({"dob": LENDER, "postcode": "E2 2BB"},
                   # A day the borrower's prison record shares with it, in another system.
                   {"dob": LENDER, "postcode": "L1 2QF", "days": ["2020-05-03"]},
                   # A prison number of any value (its own or another's): an identifier vouches.
                   {"dob": LENDER, "postcode": "L1 2QF", "prison_number": "Z9999ZZ"}):
        records = _borrowed(court_N=change)
        records["prison:Y"] = {**records["prison:Y"], "days": ["2020-05-03"]}
        con = _world(records, LINKS)
        assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}, change
    # No address or no date of birth: too little to say it is another's (`needs`).
    for change in ({"dob": LENDER}, {"postcode": "L1 2QF"}):
        con = _world(_borrowed(court_N=change), LINKS)
        assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}, change


def test_it_goes_only_where_most_of_the_identifiers_give_another_date_of_birth():
    # The identifier holders are X and Y (1990) and A (1958): two of three are far from N's.
    con = _world(_borrowed(), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYAB"), frozenset("N")}
    # B holds Q's PNC ID too: two of four, half and not most, so N stays.
    con = _world(_borrowed(court_B={"dob": LENDER, "pnc": Q}), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}
    # With `share` 0.4, two of four are enough.
    assert people(cluster_labels(con, THRESHOLD, _rules(share=0.4))) == {frozenset("XYAB"), frozenset("N")}
    # Only the lender's date of birth among the holders: N's date of birth is theirs.
    con = _world(_borrowed(court_X={"dob": LENDER, "pnc": Q, "postcode": "E2 2BB"},
                           prison_Y={"dob": LENDER, "pnc": Q}), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}


def test_a_system_alias_or_a_clerks_match_holds_it():
    con = _world(_borrowed(court_N={"dob": LENDER, "postcode": "L1 2QF", "same_as": "court:A"}), LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}
    con = _world(_borrowed(), LINKS)
    con.execute("insert into linkage.clerical_decisions values ('court:A', 'court:N', 'match', 'a clerk', "
                "now(), null)")
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYABN")}


@pytest.mark.parametrize("change, message", [
    ({"evidence": []}, "strangers.evidence must be a list"),
    ({"identifiers": "pnc_core"}, "strangers.identifiers must be a list"),
    ({"needs": ["dob", "address"]}, "does not have: \\['address'\\]"),
    ({"far": ""}, "strangers.far must be an SQL condition"),
    ({"far": "l.date_of_birth <> r.dob"}, "strangers.far does not run .*date_of_birth"),
    ({"evidence": ["l.postcode = r.post_code"]}, "strangers.evidence does not run .*post_code"),
    ({"share": 1}, "strangers.share must be a number"),
    ({"share": True}, "strangers.share must be a number"),
])
def test_bad_settings_are_a_clear_error_even_with_no_stranger(change, message):
    # One record alone: no person with two records, still checked.
    con = _world({"court:X": {"dob": BORROWER, "pnc": Q}}, [])
    with pytest.raises(ConfigError, match=message):
        cluster_labels(con, THRESHOLD, _rules(**change))
