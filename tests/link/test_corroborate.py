"""People who share an identifier, joined where the smaller one's records corroborate it
(justice.link.corroborate): an alias group joins its person; a lender's records, a PNC ID keyed
against the wrong person and two people with two identifiers stay apart."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from small_people import changed, people

from justice.errors import ConfigError
from justice.link.clerical import ensure_decisions_table
from justice.link.corroborate import candidate_pairs, value_codes
from justice.link.persons import cluster_labels, write_person_links

THRESHOLD = 5.0
P, Q = "2014/0123456", "2019/7654321"  # two people's PNC IDs (core), many characters apart
EVIDENCE = ["l.postcode = r.postcode",
            "l.system <> r.system and list_has_any(l.event_dates, r.event_dates)"]


def _world(records: dict[str, dict], links: list[tuple[str, str]]) -> duckdb.DuckDBPyConnection:
    """Records `system:id` with a PNC ID, CRO number, postcode and event days, and the model's
    links between them (each pair in `links` at weight 10, above the threshold)."""
    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
                   same_as varchar, pnc_core varchar, pnc_valid boolean, cro_core varchar, cro_valid boolean,
                   postcode varchar, event_dates date[], prison_number varchar, prison_number_valid boolean,
                   crn varchar)""")
    for u, r in sorted(records.items()):
        con.execute("insert into linkage.records values (?, ?, ?, null, ?, ?, ?, ?, ?, ?, null, null, null)",
                    [u, u.split(":")[0], u.split(":")[1], r.get("pnc"), r.get("pnc") is not None, r.get("cro"),
                     r.get("cro") is not None, r.get("postcode"), r.get("days")])
    con.execute("""create table linkage.pairs (unique_id_l varchar, unique_id_r varchar, match_weight double,
                   match_probability double)""")
    con.executemany("insert into linkage.pairs values (?, ?, 10.0, 0.999)", [[min(a, b), max(a, b)] for a, b in links])
    ensure_decisions_table(con)
    return con


def _rules(enabled: bool = True, evidence: list[str] | None = None, **extra) -> dict:
    return {"never_link": [{"column": "pnc_core", "valid": "pnc_valid"}, {"column": "cro_core", "valid": "cro_valid"}],
            "hard_negatives": [], "identifier_links": [{"column": "pnc_core", "valid": "pnc_valid"},
                                                      {"column": "cro_core", "valid": "cro_valid"}],
            "identifier_corroboration": {"enabled": enabled, "rounds": 3,
                                         "evidence": EVIDENCE if evidence is None else evidence}, **extra}


# Person P: court records X (P's PNC ID, at N1 1AA) and Y (no id, at N1 1AA, sentenced on 3 May),
# joined by the model. P's alias group: A (the alias at P's address, P's PNC ID) and B (the alias,
# received into prison on 3 May); the model joins A and B by the alias name.
def _alias_records(**change: dict | None) -> dict[str, dict]:
    """The records above, with `system_id=` a record changed, added or (None) taken out."""
    records = {"court:X": {"pnc": P, "postcode": "N1 1AA"},
               "court:Y": {"postcode": "N1 1AA", "days": ["2020-05-03"]},
               "court:A": {"pnc": P, "postcode": "N1 1AA"},
               "prison:B": {"days": ["2020-05-03"]}}
    return changed(records, change)


ALIAS_LINKS = [("court:X", "court:Y"), ("court:A", "prison:B")]


def test_an_alias_group_joins_its_person_when_its_records_are_made_where_and_when_his_are():
    con = _world(_alias_records(), ALIAS_LINKS)
    # Each group holds P's PNC ID on one record of two, so the first pass's identifier link is
    # declined (a PNC ID keyed once against the wrong person looks the same).
    assert people(cluster_labels(con, THRESHOLD, _rules(enabled=False))) == {frozenset("XY"), frozenset("AB")}
    c = cluster_labels(con, THRESHOLD, _rules())
    assert people(c) == {frozenset("XYAB")}
    # The merge is an edge of its own, between the two holders, at the threshold.
    corr = c["basis"] == "identifier corroborated"
    assert corr.sum() == 1
    ends = {c["unique_id"][c["left"][corr][0]], c["unique_id"][c["right"][corr][0]]}
    assert ends == {"court:X", "court:A"}
    assert c["weight"][corr].tolist() == [THRESHOLD]


def test_every_record_of_the_smaller_person_must_meet_the_other():
    # B was received into prison on another day: nothing of P's says B is his.
    con = _world(_alias_records(prison_B={"days": ["2021-01-09"]}), ALIAS_LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("AB")}
    # Two records of one system on one day are not evidence (a court lists many people a day).
    con = _world(_alias_records(prison_B=None, court_B={"days": ["2020-05-03"]}), [("court:X", "court:Y"),
                                                                                ("court:A", "court:B")])
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("AB")}


def test_the_larger_person_need_not_meet_the_smaller_everywhere():
    # P has a third record Z, from years before, at another address: the alias group still
    # corroborates on every one of its own records.
    records = _alias_records(court_Z={"postcode": "S9 9ZZ", "days": ["2015-01-01"]})
    con = _world(records, ALIAS_LINKS + [("court:X", "court:Z")])
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XYZAB")}


def test_a_lenders_records_do_not_follow_a_borrowed_record_to_the_borrower():
    # Borrower Q: record X holds his PNC ID, at his address, on his court day. Record L was
    # given under lender M's name and date of birth: it holds Q's PNC ID, Q's address and Q's day,
    # and the names join it to M's own record N (M's address, M's days). L meets X, but L is the
    # only holder of Q's PNC ID in its group: N, the rest, meets Q nowhere.
    records = {"court:X": {"pnc": Q, "postcode": "E2 2BB", "days": ["2020-05-03"]},
               "prison:L": {"pnc": Q, "postcode": "E2 2BB", "days": ["2020-05-03"]},
               "court:N": {"postcode": "W3 3CC", "days": ["2019-02-02"]}}
    con = _world(records, [("prison:L", "court:N")])
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("X"), frozenset("LN")}
    # Were N made at Q's address, the lender's group would corroborate (a relative at one
    # address): what the records say, the rule follows.
    records["court:N"]["postcode"] = "E2 2BB"
    con = _world(records, [("prison:L", "court:N")])
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XLN")}


def test_a_pnc_id_keyed_against_the_wrong_person_joins_nobody():
    # W holds P's PNC ID by a keying error: W's person (W and V, another address) meets P nowhere.
    records = {"court:X": {"pnc": P, "postcode": "N1 1AA"}, "court:Y": {"pnc": P, "postcode": "N1 1AA"},
               "court:W": {"pnc": P, "postcode": "B5 5EE"}, "court:V": {"postcode": "B5 5EE"}}
    con = _world(records, [("court:X", "court:Y"), ("court:W", "court:V")])
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("WV")}


def test_two_valid_identifiers_keep_people_apart_however_well_they_corroborate():
    records = _alias_records()
    records["court:Y"]["cro"] = "123456/10"
    records["prison:B"]["cro"] = "654321/15"
    con = _world(records, ALIAS_LINKS)
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("AB")}
    # A clerk's "not a match" between them keeps them apart too.
    con = _world(_alias_records(), ALIAS_LINKS)
    con.execute("insert into linkage.clerical_decisions values ('court:Y', 'prison:B', 'non_match', 'a clerk', "
                "now(), null)")
    assert people(cluster_labels(con, THRESHOLD, _rules())) == {frozenset("XY"), frozenset("AB")}


def test_a_person_joins_one_other_a_round_and_the_merged_person_corroborates_the_next():
    # Two alias groups of P's: A-B (P's PNC ID) and C-D (at P's address; C holds P's CRO number,
    # which X holds too). P's person takes one of them in the first round and the other, met by
    # the merged person, in the second.
    records = _alias_records()
    records["court:X"]["cro"] = "123456/10"
    records["court:C"] = {"cro": "123456/10", "postcode": "N1 1AA"}
    records["court:D"] = {"postcode": "N1 1AA"}
    con = _world(records, ALIAS_LINKS + [("court:C", "court:D")])
    c = cluster_labels(con, THRESHOLD, _rules())
    assert people(c) == {frozenset("XYABCD")}
    assert (c["basis"] == "identifier corroborated").sum() == 2
    # One round: the first merge only (X's person takes one partner a round).
    one = _rules()
    one["identifier_corroboration"]["rounds"] = 1
    assert len(people(cluster_labels(con, THRESHOLD, one))) == 2


def test_a_person_takes_the_better_corroborated_partner_first():
    # P (W, X, Y, Z at N1 1AA; W holds P's PNC ID and CRO number) and two groups that each share
    # one of them: G1 (A, B: two records met) and G2 (C, D, E: three met). G1's cluster comes
    # first in label order; G2 is met by more records, so P takes G2 in the first round.
    at = {"postcode": "N1 1AA"}
    records = {"court:W": {"pnc": P, "cro": "123456/10", **at}, "court:X": at, "court:Y": at, "court:Z": at,
               "court:A": {"pnc": P, **at}, "court:B": at,
               "court:C": {"cro": "123456/10", **at}, "court:D": at, "court:E": at}
    links = [("court:W", "court:X"), ("court:X", "court:Y"), ("court:Y", "court:Z"), ("court:A", "court:B"),
             ("court:C", "court:D"), ("court:D", "court:E")]
    one = _rules()
    one["identifier_corroboration"]["rounds"] = 1
    assert people(cluster_labels(_world(records, links), THRESHOLD, one)) == {frozenset("WXYZCDE"), frozenset("AB")}
    assert people(cluster_labels(_world(records, links), THRESHOLD, _rules())) == {frozenset("WXYZCDEAB")}


def test_what_is_left_of_an_alias_group_after_its_pnc_record_goes_to_the_person_corroborates_again():
    # P: X and Y hold P's PNC ID at N1 1AA; Z holds P's CRO number elsewhere. P's alias group: A1
    # (P's PNC ID, no address, in court on 3 May), A2 (P's CRO number, at N1 1AA) and A3 (received
    # into prison on 3 May). A1 meets none of P's records, so the group does not corroborate; then
    # A1 goes to P, who holds its PNC ID twice (identifier_holders), and the rest of the group
    # meets P on every record: A2 at N1 1AA, A3 on A1's day.
    records = {"court:X": {"pnc": P, "postcode": "N1 1AA"}, "court:Y": {"pnc": P, "postcode": "N1 1AA"},
               "court:Z": {"cro": "123456/10", "postcode": "S9 9ZZ"},
               "court:A1": {"pnc": P, "days": ["2020-05-03"]}, "court:A2": {"cro": "123456/10", "postcode": "N1 1AA"},
               "prison:A3": {"days": ["2020-05-03"]}}
    links = [("court:X", "court:Y"), ("court:Y", "court:Z"), ("court:A1", "court:A2"), ("court:A2", "prison:A3")]
    holders = {"identifier_holders": {"enabled": True, "min_holders": 2}}
    c = cluster_labels(_world(records, links), THRESHOLD, _rules(**holders))
    assert people(c) == {frozenset(["X", "Y", "Z", "A1", "A2", "A3"])}
    assert (c["basis"] == "identifier corroborated").sum() == 1
    # Without the holders' move, the group stays apart.
    assert people(cluster_labels(_world(records, links), THRESHOLD, _rules())) == {
        frozenset("XYZ"), frozenset(["A1", "A2", "A3"])}


def test_the_merge_is_written_with_its_basis():
    con = _world(_alias_records(), ALIAS_LINKS)
    _links, persons = write_person_links(con, THRESHOLD, "run-1", _rules())
    assert persons == 1
    rows = dict(con.execute("select record_id, linked_by from linkage.person_links").fetchall())
    assert rows["A"] == "identifier corroborated, model"
    assert rows["B"] == "model"


def test_evidence_or_rounds_written_wrong_is_a_clear_error():
    con = _world(_alias_records(), ALIAS_LINKS)
    with pytest.raises(ConfigError, match="identifier_corroboration.evidence"):
        cluster_labels(con, THRESHOLD, _rules(evidence="l.postcode = r.postcode"))
    with pytest.raises(ConfigError, match="identifier_corroboration.evidence"):
        cluster_labels(con, THRESHOLD, _rules(evidence=[""]))
    with pytest.raises(ConfigError, match="identifier_corroboration.evidence"):
        cluster_labels(con, THRESHOLD, _rules(evidence=[]))
    # A condition on a column the records do not have names the rule and the column, even where
    # no two people share an identifier.
    with pytest.raises(ConfigError, match="identifier_corroboration.evidence does not run.*postcode_area"):
        cluster_labels(con, THRESHOLD, _rules(evidence=["l.postcode_area = r.postcode_area"]))
    alone = _world({"court:X": {"pnc": P}, "court:Y": {"pnc": Q}}, [("court:X", "court:Y")])
    with pytest.raises(ConfigError, match="identifier_corroboration.evidence does not run.*postcode_area"):
        cluster_labels(alone, THRESHOLD, _rules(evidence=["l.postcode_area = r.postcode_area"]))
    bad = _rules()
    bad["identifier_corroboration"]["rounds"] = "three"
    with pytest.raises(ConfigError, match="identifier_corroboration.rounds"):
        cluster_labels(con, THRESHOLD, bad)


def test_candidate_pairs_name_each_pair_of_people_once_with_their_holders():
    labels = np.array([0, 0, 1, 1, 2])
    pnc = np.array([P, P, P, None, Q], dtype=object)
    cro = np.array([None, "1/10", None, "1/10", None], dtype=object)
    pairs = candidate_pairs(labels, value_codes([pnc, cro]))
    assert pairs[["c1", "c2", "node_l", "node_r", "rule"]].values.tolist() == [[0, 1, 0, 2, 0]]
    # Cluster 0 holds P on two records, cluster 1 on one.
    assert pairs[["single_l", "single_r"]].values.tolist() == [[False, True]]
    assert candidate_pairs(labels, value_codes([np.array([None] * 5, dtype=object)])).empty
    # Three clusters holding one value make three pairs; labels in any order.
    three = candidate_pairs(np.array([2, 0, 1, 1]), value_codes([np.array([Q, Q, Q, Q], dtype=object)]))
    assert three[["c1", "c2", "node_l", "node_r"]].values.tolist() == [[0, 1, 1, 2], [0, 2, 1, 0], [1, 2, 2, 0]]
    assert three[["single_l", "single_r"]].values.tolist() == [[True, False], [True, True], [False, True]]
