"""`justice link` on a simulated world, checked against the answer key (truth/records.parquet)."""

from __future__ import annotations

import json

import duckdb
import pytest
from homes import copy_home
from homes import warehouse_rows as _q
from scipy.stats import binom

from justice.errors import ConfigError, TransformError
from justice.identifiers import pnc_check_char
from justice.link import cluster as clustering
from justice.link import model as mdl
from justice.link.clerical import record_decision
from justice.link.evaluate import evaluate
from justice.link.run import link
from justice.link.standardise import load_sources
from justice.link.store import open_warehouse


def _quality(settings) -> dict:
    con = open_warehouse(settings, read_only=True)
    try:
        return evaluate(con, settings.truth_dir)
    finally:
        con.close()


def test_every_record_of_every_system_has_one_person_id(linked_home):
    truth = linked_home.truth_dir / "records.parquet"
    missing, extra, dupes = _q(linked_home, f"""
        select (select count(*) from read_parquet('{truth}') t anti join linkage.person_links l using (system, record_id)),
               (select count(*) from linkage.person_links l anti join read_parquet('{truth}') t using (system, record_id)),
               (select count(*) from (select system, record_id from linkage.person_links group by all having count(*) > 1))
    """)[0]
    assert (missing, extra, dupes) == (0, 0, 0)
    assert _q(linked_home, "select count(*) from linkage.person_links where person_id is null")[0][0] == 0
    systems = {r[0] for r in _q(linked_home, "select distinct system from linkage.person_links")}
    assert systems == {"magistrates", "crown", "prison", "probation", "interventions"}


def test_accuracy_against_truth(linked_home):
    q = _quality(linked_home)
    # On this 3,000-person world with issue 13's identity mess (aliases, borrowed identities,
    # wrong identifiers, persistent name changes) the label-free threshold measured precision
    # 0.986, recall 0.911, F1 0.947, and precision 0.993 without the records given under a
    # borrowed identity (another real person's name and date of birth, which no linker reading
    # names can place). With the one-off summary defendants (8,807 more magistrates' records, a
    # person each): 0.985, 0.906, 0.944 and 0.991; the linker's own false pairs 55 (26 before),
    # magistrates-magistrates precision 0.971. benchmarks/link_quality.py has the figures at
    # 20,000 people.
    assert q["pairwise"]["f1"] >= 0.93, q["pairwise"]
    assert q["pairwise"]["precision"] >= 0.98, q["pairwise"]
    assert q["pairwise_without_borrowed_identities"]["precision"] >= 0.99, q
    assert q["clusters"]["bcubed_f1"] >= 0.95, q["clusters"]
    # Within each pair of systems, the linker's own precision: records given under a borrowed
    # identity are left out, as for the figure above (in a pair of systems with ~90 true pairs,
    # two borrowed-identity records put with their lender are already 2 points of precision).
    for row in q["by_system_pair_without_borrowed_identities"]:
        if row["true_pairs"] >= 50:
            assert row["precision"] >= 0.97, row
    # The false pairs by cause, measured on this world (seed 11, adults entering at 18 + Gamma(1.4,
    # 8.5)): 93 a borrowed-identity record with the person it names (or with that person's
    # namesake), 65 a borrower's own records with the lender's own, joined through the borrowed
    # ones (Jason Wright's 11 records with Lawrence Crangle's 2: Jason gives Lawrence's name and
    # date of birth on records that share Jason's prison numbers and alias rows, and match
    # Lawrence's by name and date of birth; with no second PNC ID in the person, no constraint
    # parts them), and 26 the linker's own (22 of them two namesakes: same forename, surname and
    # date of birth, no identifier), of 13,105 predicted (with the one-off summary defendants,
    # 89, 54 and 55 of 13,053: most of the linker's new own are one-off twins, see the test
    # below). A borrowed identity never drags a
    # record to a third person who is not the lender's namesake; a borrower's bridge and the
    # linker's own errors stay under 1% and 0.5% of what it links.
    fp, predicted = q["false_pairs"], q["pairwise"]["predicted_pairs"]
    assert sum(fp.values()) == predicted - q["pairwise"]["correct_pairs"], fp
    assert fp["borrowed_with_other"] <= 0.001 * predicted, fp
    assert fp["borrower_with_lender"] <= 0.01 * predicted and fp["other"] <= 0.005 * predicted, fp
    # People against person ids, the figure every per-person count downstream inherits (docs/
    # linkage.md, "Downstream figures on the messier world"): measured 2,860 people, 3,007 ids:
    # 186 extra ids from people split (84 of them pieces made only of alias or borrowed-identity
    # records), 39 saved by merges. Bounds: splits under 9% of people, merges under 1.5%.
    people = q["people"]
    assert people["extra_ids_from_splits"] <= 0.09 * people["true_people"], people
    assert people["ids_saved_by_merges"] <= 0.015 * people["true_people"], people


def test_twins_in_the_world_are_rarely_merged(linked_home):
    """The simulator makes twins (truth: persons.twin_of): same surname and date of birth,
    different people, an address shared until one of them moves. Twins with different PNC IDs,
    different middle names or plainly different forenames are kept apart; twins with alike
    forenames and nothing else to tell them apart (Julie and Jodie, no identifiers) can still
    merge, so the bound is a small share, not zero. Twins are read from the answer key, not found
    by surname, date of birth and postcode: each twin keeps their own address history.

    The one-off summary defendants' twins (sim/one_offs.py) have a record each and no identifier:
    only names, date of birth and address, so alike forenames (Adele and Ailis, Emma and Ellie),
    one's forename the other's middle name, or a mistyped surname leave nothing to part them.
    Measured on this world: 2 of 54 careers' twin pairs merged, 16 of 128 one-off pairs; on the
    10,000-person tuning worlds (seeds 31-32) 1-3% and 5-9% (docs/linkage.md)."""
    truth = linked_home.truth_dir
    rows = _q(linked_home, f"""
        with p as (select l.person_id as pred, t.person_id as truth
                   from linkage.person_links l join read_parquet('{truth / "records.parquet"}') t
                   using (system, record_id)),
        twins as (select distinct least(person_id, twin_of) as a, greatest(person_id, twin_of) as b
                  from read_parquet('{truth / "persons.parquet"}')
                  where twin_of is not null
                    and person_id in (select truth from p) and twin_of in (select truth from p))
        select a like 'PS%' as one_off, count(*), count(*) filter (where exists (
            select 1 from p x join p y on x.pred = y.pred where x.truth = twins.a and y.truth = twins.b))
        from twins group by 1 order by 1
    """)
    (careers, pairs, merged), (one_off, pairs_1, merged_1) = rows
    assert not careers and one_off
    assert pairs >= 5 and pairs_1 >= 50, "the world should hold some twins with records"
    # The claim is that at most 5% of the careers' twin pairs merge, and 15% of the one-off
    # ones. A world of 3,000 holds about 50 careers' pairs, too few to show a share that small
    # directly, so the test refutes a claim only when the merges seen would be unlikely (under 1%)
    # if it held.
    assert binom.sf(merged - 1, pairs, 0.05) >= 0.01, (merged, pairs)
    assert binom.sf(merged_1 - 1, pairs_1, 0.15) >= 0.01, (merged_1, pairs_1)


def _crafted_source(person: dict) -> dict:
    """Hand-made hard negatives and a positive control around one real person."""
    pnc_x = f"2011/0000001{pnc_check_char(2011, 1)}"
    pnc_y = f"2011/0000002{pnc_check_char(2011, 2)}"
    dob = person["dob"].isoformat()
    rows = [
        # twins: the person's surname, date of birth and postcode, other forenames; one with a PNC
        # ID, one with no identifier at all
        ("twin1", "Zebedee", person["surname"], dob, person["sex"], person["postcode"], pnc_x),
        ("twin2", "Quentin", person["surname"], dob, person["sex"], person["postcode"], None),
        # a namesake: same name and date of birth, different postcode and PNC ID
        ("namesake", person["forename"], person["surname"], dob, person["sex"], "ZZ9 9ZZ", pnc_y),
        # the person again, surname mistyped, no identifiers: should join them
        ("again", person["forename"], person["surname"][:-1] + "q", dob, person["sex"], person["postcode"], None),
    ]
    values = ", ".join("(" + ", ".join("null" if v is None else "'" + str(v).replace("'", "''") + "'" for v in r) + ")"
                       for r in rows)
    return {"records": f"""
        select id as record_id, fore as forenames, sur as surname, dob::date as dob, sex, pc as postcode,
               pnc, null as cro, null as prison_number, null as crn, null as same_as
        from (values {values}) as t(id, fore, sur, dob, sex, pc, pnc)"""}


def test_hard_negatives_stay_apart_and_a_mistyped_record_joins(linked_home, tmp_path):
    settings = copy_home(linked_home, tmp_path / "home")
    row = _q(settings, """
        select r.forename, r.surname, r.dob, r.sex, r.postcode, l.person_id
        from linkage.records r join linkage.person_links l using (unique_id)
        where r.system = 'magistrates' and r.dob is not null and r.postcode is not null and r.pnc_valid
          and length(r.surname) > 4 and l.cluster_size >= 2
        order by r.unique_id limit 1""")[0]
    person = dict(zip(("forename", "surname", "dob", "sex", "postcode", "person_id"), row))
    sources = load_sources()
    sources["crafted"] = _crafted_source(person)
    result = link(settings, sources=sources)
    assert result.mode == "incremental" and result.changed_records == 4
    ids = dict(_q(settings, "select record_id, person_id from linkage.person_links where system = 'crafted'"))
    assert ids["again"] == person["person_id"]
    assert len({ids["twin1"], ids["twin2"], ids["namesake"], person["person_id"]}) == 4


def test_a_rerun_changes_nothing_and_ids_are_stable(linked_home, tmp_path):
    settings = copy_home(linked_home, tmp_path / "home")
    before = _q(settings, "select unique_id, person_id from linkage.person_links order by 1")
    again = link(settings)
    assert again.mode == "unchanged" and again.changed_records == 0 and again.pairs_scored == 0
    assert again.persons == len({p for _, p in before})
    assert _q(settings, "select unique_id, person_id from linkage.person_links order by 1") == before
    full = link(settings, full=True)
    assert full.mode == "full"
    assert _q(settings, "select unique_id, person_id from linkage.person_links order by 1") == before
    assert _q(settings, "select count(*) from linkage.person_id_changes")[0][0] == 0
    runs = _q(settings, "select mode from linkage.runs order by finished_at")
    assert [r[0] for r in runs][-2:] == ["unchanged", "full"]


def test_new_records_are_matched_against_the_index_without_retraining(linked_home, tmp_path):
    settings = copy_home(linked_home, tmp_path / "home")
    version = mdl.load_model(settings.home)[0]["justice"]["version"]
    sources = load_sources()
    # A new system sends copies of 40 existing crown defendants under its own ids.
    sources["newsys"] = {"records": """
        select 'N' || defendant_id as record_id, concat_ws(' ', forename_1, forename_2) as forenames, surname,
               date_of_birth as dob, case gender when '1' then 'M' when '2' then 'F' end as sex, postcode,
               pnc_id as pnc, cro_number as cro, null as prison_number, null as crn, null as same_as
        from staging.crown__defendants__latest order by defendant_id limit 40"""}
    before = dict(_q(settings, "select unique_id, person_id from linkage.person_links"))
    result = link(settings, sources=sources)
    assert result.mode == "incremental" and result.changed_records == 40
    assert mdl.load_model(settings.home)[0]["justice"]["version"] == version
    after = dict(_q(settings, "select unique_id, person_id from linkage.person_links"))
    # An existing person id changes only by a merge the run records. A copy can corroborate a PNC
    # its original held alone in its group, and the clustering joins two groups on a shared PNC
    # only where each holds it on two records or more (persons._supported): such a group may now
    # join the other holder's. A copy adds no other evidence, so at most a few of 40 do that.
    changed = {(v, after[k]) for k, v in before.items() if after[k] != v}
    merged = set(_q(settings, "select old_person_id, new_person_id from linkage.person_id_changes "
                              "where run_id = ? and reason = 'merged'", [result.run_id]))
    assert changed <= merged, changed - merged
    assert len(changed) <= 2, changed
    pairs = _q(settings, """select n.person_id = o.person_id from linkage.person_links n
                            join linkage.person_links o on o.unique_id = 'crown:' || substr(n.record_id, 2)
                            where n.system = 'newsys'""")
    assert len(pairs) == 40 and sum(r[0] for r in pairs) >= 39


def test_clerical_decisions_are_honoured_on_every_run(linked_home, tmp_path):
    settings = copy_home(linked_home, tmp_path / "home")
    a, b = _q(settings, """
        select p.unique_id_l, p.unique_id_r from linkage.pairs p
        join linkage.person_links l on l.unique_id = p.unique_id_l
        join linkage.person_links r on r.unique_id = p.unique_id_r
        where l.person_id = r.person_id and l.cluster_size = 2 and p.match_weight >= 6 limit 1""")[0]
    # Two people of one record each that hold no two different valid PNC IDs or CRO numbers: a
    # "match" decision overrides a hard negative, not two identifiers a person has one of.
    c, d = _q(settings, """
        select l.unique_id, r.unique_id from linkage.person_links l, linkage.person_links r,
               linkage.records lr, linkage.records rr
        where l.cluster_size = 1 and r.cluster_size = 1 and l.unique_id < r.unique_id
          and lr.unique_id = l.unique_id and rr.unique_id = r.unique_id
          and not coalesce(lr.pnc_valid and rr.pnc_valid and lr.pnc_core <> rr.pnc_core, false)
          and not coalesce(lr.cro_valid and rr.cro_valid and lr.cro_core <> rr.cro_core, false)
        order by l.unique_id, r.unique_id limit 1""")[0]
    record_decision(settings, a, b, "non_match", "tester", "different people")
    record_decision(settings, d, c, "match", "tester")
    for run in ("incremental", "full"):
        link(settings, full=(run == "full"))
        ids = dict(_q(settings, "select unique_id, person_id from linkage.person_links "
                                "where unique_id in (?, ?, ?, ?)", [a, b, c, d]))
        assert ids[a] != ids[b], run
        assert ids[c] == ids[d], run
    assert _q(settings, "select linked_by from linkage.person_links where unique_id = ?", [c])[0][0] == "clerical"
    pending = _q(settings, "select count(*) from linkage.clerical_review where unique_id_l = ? and unique_id_r = ?",
                 [a, b])[0][0]
    assert pending == 0
    with pytest.raises(ConfigError, match="no such record"):
        record_decision(settings, a, "crown:nope", "match", "tester")
    with pytest.raises(ConfigError, match="decision"):
        record_decision(settings, a, b, "maybe", "tester")
    with pytest.raises(ConfigError, match="reviewer"):
        record_decision(settings, a, b, "match", " ")


def test_the_review_queue_holds_the_uncertainty_band_and_kept_apart_pairs(linked_home):
    spec = mdl.load_model(linked_home.home)[0]["justice"]["thresholds"]
    lo, hi, n = _q(linked_home, "select min(match_weight), max(match_weight), count(*) from linkage.clerical_review "
                                "where reason = 'match weight in the review band'")[0]
    assert n > 0 and lo >= spec["review_low"] and hi < spec["review_high"]
    # Pairs a hard-negative rule kept apart despite a linking weight are queued too.
    kept = _q(linked_home, "select count(*), min(match_weight), max(match_weight), list(distinct current_outcome) "
                           "from linkage.clerical_review where reason <> 'match weight in the review band'")[0]
    assert kept[0] > 0 and kept[1] >= spec["review_low"] and kept[2] >= spec["match_weight"]
    assert kept[3] == ["kept apart"]
    # Each such pair really is in two clusters.
    split = _q(linked_home, """select count(*) from linkage.clerical_review c
        join linkage.person_links a on a.unique_id = c.unique_id_l join linkage.person_links b on b.unique_id = c.unique_id_r
        where c.current_outcome = 'kept apart' and a.person_id = b.person_id""")[0][0]
    assert split == 0
    # A reviewer sees the days of events two systems' records share; one system's never.
    days = _q(linked_home, """select count(*) filter (where c.shared_event_days is not null),
        count(*) filter (where c.shared_event_days is distinct from case when l.system <> r.system
                         then nullif(list_intersect(l.event_dates, r.event_dates), []) end)
        from linkage.clerical_review c join linkage.records l on l.unique_id = c.unique_id_l
        join linkage.records r on r.unique_id = c.unique_id_r""")[0]
    assert days[0] > 0 and days[1] == 0
    # A pair two rules keep apart (twins and siblings) is queued once, with both reasons.
    once = _q(linked_home, """select count(*) - count(distinct (unique_id_l, unique_id_r)),
        count(*) filter (where reason like '%; %') from linkage.clerical_review""")[0]
    assert once[0] == 0 and once[1] > 0


def test_models_are_versioned_and_complete(linked_home, tmp_path):
    settings = copy_home(linked_home, tmp_path / "home")
    model, path = mdl.load_model(settings.home)
    assert path.name == "model-v0001.json" and model["justice"]["version"] == 1
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            if not level.get("is_null_level"):
                assert 0 < level["m_probability"] <= 1 and 0 < level["u_probability"] <= 1, (comp, level)
    assert 0 < model["probability_two_random_records_match"] < 0.01
    result = link(settings, retrain=True)
    assert result.model_version == 2 and result.mode == "full"
    assert (settings.home / "linkage" / "models" / "model-v0001.json").exists()
    assert json.loads((settings.home / "linkage" / "models" / "current.json").read_text())["model"] == "model-v0002.json"
    assert mdl.load_model(settings.home, version=1)[0]["justice"]["version"] == 1
    with pytest.raises(ConfigError, match="version 9"):
        mdl.load_model(settings.home, version=9)


def test_a_failed_run_leaves_the_index_whole(linked_home, tmp_path, monkeypatch):
    settings = copy_home(linked_home, tmp_path / "home")
    before = _q(settings, "select unique_id, person_id from linkage.person_links order by 1")
    runs = _q(settings, "select count(*) from linkage.runs")[0][0]

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clustering, "stable_ids", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        link(settings, full=True)
    assert _q(settings, "select unique_id, person_id from linkage.person_links order by 1") == before
    assert _q(settings, "select count(*) from linkage.runs")[0][0] == runs


def test_linking_before_ingest_says_what_to_do(tmp_path):
    from justice.settings import Settings

    with pytest.raises(ConfigError, match="justice ingest"):
        link(Settings(home=tmp_path))
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    with pytest.raises(TransformError, match="justice ingest"):
        link(Settings(home=tmp_path))


@pytest.mark.slow
def test_high_mess_world_still_links_well(tmp_path):
    """At the high mess level (about double the published error rates, every field of a chaotic
    person's records corrupted) the same model spec keeps precision high through the
    constraints; recall falls. Measured on this world: precision 0.976 over every record, 0.995
    without borrowed identities, recall 0.78, F1 0.86 (docs/linkage.md section 9 has the
    20,000-person figures). Of the 222 false pairs, 176 are a record given under a borrowed
    identity put with the person whose name and date of birth it carries (15 of them with that
    person's namesake: Barry Khan, 1993-09-19, twice in the world): what the record says, which
    no name-based linker can undo, and how many depends on how often this world's people borrow.
    So the precision asserted is the linker's own: a borrower's own records joined to the
    lender's through the borrowed ones (28) and its other false pairs (18) under 1% of the pairs
    it predicts, and no borrowed-identity record put with a third person."""
    from justice.ingest.run import ingest
    from justice.settings import Settings
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    simulate_to(SimulationParams(persons=2_000, seed=5, mess="high"), tmp_path)
    settings = Settings(home=tmp_path)
    ingest(settings)
    link(settings)
    q = _quality(settings)
    assert q["truth_records_without_person_id"] == 0
    fp, predicted = q["false_pairs"], q["pairwise"]["predicted_pairs"]
    assert sum(fp.values()) == predicted - q["pairwise"]["correct_pairs"], fp
    assert fp["borrowed_with_other"] == 0, fp
    assert fp["borrower_with_lender"] + fp["other"] <= 0.01 * predicted, fp
    assert q["pairwise_without_borrowed_identities"]["precision"] >= 0.99, q
    assert q["pairwise"]["f1"] >= 0.81, q["pairwise"]
