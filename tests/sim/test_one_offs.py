"""One-off summary defendants (sim/one_offs.py): how many, what they did, what became of them,
and that they leave the careers' world as it was."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pyarrow.parquet as pq
import pytest
from worlds import assert_same_world_without

from justice.errors import SimulationError
from justice.sim import one_offs, people
from justice.sim import reference as ref
from justice.sim.courts import NONE
from justice.sim.world import simulate

START, END = ref.day_number("2014-01-01"), ref.day_number("2025-12-31")


def _courts() -> dict[str, np.ndarray]:
    return {"court_code": np.array(["B01001", "B02002", "401"], dtype=object),
            "court_type": np.array(["magistrates", "magistrates", "crown"], dtype=object),
            "region": np.array(["London", "Wales", "London"], dtype=object)}


@functools.cache
def _pools():
    return people.name_pools(), people.postcode_pool(1, 2_000)


def _cases(seed: int = 3, persons: int = 20_000, **changes) -> dict[str, np.ndarray]:
    w = ref.world()
    w["one_off_summary"] = {**w["one_off_summary"], **changes}
    pools, postcodes = _pools()
    return one_offs.simulate(np.random.default_rng(seed), w, persons, _courts(), START, END, pools, postcodes)


def test_volume_window_dates_and_outcomes_follow_the_world_file():
    w = ref.world()["one_off_summary"]
    c = _cases()
    n = len(c["case_id"])
    # Per 1,000 people with careers a year: about 245 * 20 * 12 years, Poisson.
    years = (END - START + 1) / 365.25
    expected = w["cases_per_1000_persons_per_year"] * 20 * years
    assert abs(n - expected) < 5 * np.sqrt(expected) + 0.02 * expected, (n, expected)
    assert ((c["receipt_date"] >= START) & (c["receipt_date"] <= END)).all()
    assert (np.diff(c["receipt_date"]) >= 0).all()  # in order of receipt
    assert (c["offence_date"] < c["receipt_date"]).all()
    done = c["completion_date"] != NONE
    assert (c["completion_date"][done] > c["receipt_date"][done]).all()
    assert (c["completion_date"][done] <= END).all() and not done.all()
    # No outcome before completion; a disposal exactly when convicted, on the completion day.
    assert all(v is None for v in c["outcome"][~done])
    convicted = done & np.isin(c["outcome"], one_offs.CONVICTED)
    assert (np.not_equal(c["disposal_type"], None) == convicted).all()
    assert (c["disposal_date"][convicted] == c["completion_date"][convicted]).all()
    assert (c["disposal_date"][~convicted] == NONE).all()
    assert set(c["disposal_type"][convicted]) == {"fine"}
    assert np.mean(convicted[done]) == pytest.approx(0.89, abs=0.01)
    # Unique ids, text when written; people with no other record.
    assert len(set(c["case_id"].tolist())) == n and len(set(c["person_id"].tolist())) == n
    assert c["case_id"][0] == b"SC00000001" and c["person_id"][0] == b"PS00000001"
    # Adults; magistrates' courts only, each with its own region.
    age = (c["offence_date"] - c["dob"]) / 365.25
    assert age.min() >= 18 - 1e-9 and 35 < age.mean() < 45
    assert set(c["court_code"]) == {"B01001", "B02002"}
    assert set(zip(c["court_code"], c["region"])) == {("B01001", "London"), ("B02002", "Wales")}


def test_offences_sex_and_the_single_justice_procedure():
    c = _cases()
    w = ref.world()["one_off_summary"]
    codes, counts = np.unique(c["offence_code"].astype(str), return_counts=True)
    share = dict(zip(codes.tolist(), (counts / counts.sum()).tolist()))
    for code, p in w["offences"].items():
        assert share[code] == pytest.approx(p, abs=0.01), code
    tv = c["offence_code"] == "SN11002"
    assert np.mean(c["sex"][tv] == "F") == pytest.approx(1 - w["male_share"]["SN11002"], abs=0.02)
    speeding = c["offence_code"] == "SM12001"
    assert np.mean(c["sex"][speeding] == "M") == pytest.approx(w["male_share"]["SM12001"], abs=0.02)
    motoring = np.char.startswith(c["offence_group"].astype(str), "12 ")
    assert (c["case_type"][motoring] == "summary_motoring").all()
    assert (c["case_type"][~motoring] == "summary_non_motoring").all()
    # The procedure exists from 13 April 2015 and takes most cases from then.
    sjp_from = ref.day_number("2015-04-13")
    single = c["procedure"] == "single_justice"
    assert not single[c["receipt_date"] < sjp_from].any()
    assert np.mean(single[c["receipt_date"] >= sjp_from]) == pytest.approx(0.90, abs=0.01)


def test_the_volume_is_per_person_with_a_career_and_can_be_switched_off():
    small = len(_cases(persons=5_000)["case_id"])
    large = len(_cases(persons=20_000)["case_id"])
    assert large / small == pytest.approx(4, rel=0.05)
    assert len(_cases(cases_per_1000_persons_per_year=0)["case_id"]) == 0


@pytest.mark.parametrize("changes, says", [
    ({"offences": {"VA01005": 1.0}}, "non-recordable"),  # common assault: recordable, imprisonable
    ({"offences": {"SM12001": 0.5, "XX99999": 0.5}}, "not in offences.csv"),
    ({"offences": {"SM12001": 0.5}}, "summing to 1"),
    ({"outcomes": {"convicted_guilty_plea": 0.5, "cautioned": 0.5}}, "unknown"),
    ({"disposals": {"fine": 0.5, "custody": 0.5}}, "fined or discharged"),
    ({"cases_per_1000_persons_per_year": -1}, "cases_per_1000_persons_per_year must be between"),
    ({"cases_per_1000_persons_per_year": "many"}, "cases_per_1000_persons_per_year must be a number"),
    ({"single_justice_share": 1.5}, "single_justice_share must be between"),
    ({"single_justice_from": "soon"}, "single_justice_from must be a date"),
    ({"male_share": {"SM12001": 0.7}}, "male_share has no share for"),
    ({"age": {"min": 18, "gamma_shape": 2.2}}, "one_off_summary.age.gamma_scale is missing"),
])
def test_a_world_file_asking_for_what_the_procedure_cannot_do_is_refused(changes, says):
    with pytest.raises(SimulationError, match=says):
        _cases(**changes)


def test_the_careers_world_is_the_same_with_or_without_the_one_off_cases(tmp_path):
    assert_same_world_without(tmp_path, {"one_off_summary": {"cases_per_1000_persons_per_year": 0}},
                              "one_off_cases", "case_id", 4_000)


def test_written_as_text_ids_and_dates(small_truth):
    out, world = small_truth
    t = pq.read_table(out / "truth" / "one_off_cases.parquet")
    assert t.num_rows == len(world.tables["one_off_cases"]["case_id"]) > 0
    assert str(t.schema.field("case_id").type) == "string"
    assert str(t.schema.field("receipt_date").type) == "date32[day]"
    assert t.column("case_id")[0].as_py() == "SC00000001"
    # An open case has no completion date (null, not a sentinel).
    assert t.column("completion_date").null_count == int(
        (world.tables["one_off_cases"]["completion_date"] == NONE).sum())
    # They are rows of the careers' tables too, after the careers' own, with the same schema.
    careers = len(world.tables["court_cases"]["case_id"])
    cases = pq.read_table(out / "truth" / "court_cases.parquet")
    assert cases.num_rows == careers + t.num_rows
    assert cases.column("case_id")[careers:].to_pylist() == t.column("case_id").to_pylist()
    assert cases.column("receipt_date")[careers:].to_pylist() == t.column("receipt_date").to_pylist()
    assert cases.column("episode_id")[careers:].null_count == t.num_rows
    persons = pq.read_table(out / "truth" / "persons.parquet")
    ids = persons.column("person_id").to_pylist()
    assert ids == sorted(ids)  # careers' P... then one-off PS...: still sorted for lookups
    assert ids[-t.num_rows:] == t.column("person_id").to_pylist()
    offences = pq.read_table(out / "truth" / "offences.parquet", columns=["case_id", "recordable"])
    assert offences.num_rows == len(world.tables["offences"]["offence_id"]) + t.num_rows


def test_names_addresses_and_twins_as_the_careers_have_them():
    c = _cases()
    n = len(c["case_id"])
    assert all(isinstance(v, str) and v for v in c["forename"].tolist())
    assert all(isinstance(v, str) and v for v in c["surname"].tolist())
    assert 0.55 < np.mean(np.not_equal(c["middle_name"], None)) < 0.70
    assert set(c["ethnicity"]) <= set(ref.world()["population"]["ethnicity"])
    twin = c["twin_of"] != b""
    # 3.2% of people are twins: pairs of people with no other record, the second pointing at the first.
    assert np.mean(twin) * 2 == pytest.approx(ref.world()["population"]["twin_share"], rel=0.15)
    pos = {p: i for i, p in enumerate(c["person_id"].tolist())}
    first = np.array([pos[t] for t in c["twin_of"][twin].tolist()])
    second = np.flatnonzero(twin)
    for col in ("surname", "dob", "postcode", "ethnicity"):
        assert (c[col][second] == c[col][first]).all(), col
    assert (c["forename"][second] != c["forename"][first]).all()
    assert not twin[first].any()  # a first twin is nobody's second
    # Every twin is still an adult at their offence.
    assert ((c["offence_date"] - c["dob"]) >= 18 * 365.25).all()
    assert n > 40_000


def test_truth_rows_are_the_careers_tables_rows_for_each_case():
    c = _cases(persons=2_000)
    n = len(c["case_id"])
    half = n // 2
    parts = [one_offs.truth_rows(c, 0, half), one_offs.truth_rows(c, half, n)]
    rows = {t: {k: np.concatenate([p[t][k] for p in parts]) for k in parts[0][t]} for t in one_offs.TRUTH_TABLES}
    assert len(rows["persons"]["person_id"]) == len(rows["court_cases"]["case_id"]) == len(rows["offences"]["offence_id"]) == n
    for table, key in (("persons", "person_id"), ("offences", "offence_id"), ("hearings", "hearing_id"),
                       ("disposals", "disposal_id")):
        ids = rows[table][key].tolist()
        assert len(set(ids)) == len(ids), table  # unique across the two slices
    assert rows["persons"]["person_id"][0] == "PS00000001" and rows["court_cases"]["case_id"][0] == "SC00000001"
    convicted = np.isin(c["outcome"], one_offs.CONVICTED) & (c["completion_date"] != NONE)
    assert len(rows["disposals"]["disposal_id"]) == int(convicted.sum())
    assert (rows["offences"]["proven"] == convicted).all() and not rows["offences"]["recordable"].any()
    assert set(rows["court_cases"]["court_type"]) == {"magistrates"}
    # Each case is listed first on its receipt day, and decided on a later day when it completed later.
    h = rows["hearings"]
    firsts = h["hearing_type"] == "first_hearing"
    assert int(firsts.sum()) == n
    assert (h["hearing_date"][firsts] == c["receipt_date"][np.searchsorted(
        rows["court_cases"]["case_id"].astype(str), h["case_id"][firsts].astype(str))]).all()
    later = (c["completion_date"] != NONE) & (c["completion_date"] > c["receipt_date"])
    assert int((~firsts).sum()) == int(later.sum())
    assert set(h["outcome"][firsts]) <= {"guilty_plea", "not_guilty_plea", "no_plea"}


def test_read_back_from_truth_as_made(small_truth, tmp_path):
    # simulate_to lets the magistrates' extract read the cases back from truth a year at a time
    # (so they are not held beside the careers' extract) and gives the world them back after:
    # the same values and types as made.
    out, world = small_truth
    made = simulate(world.params).tables["one_off_cases"]
    back = world.tables["one_off_cases"]
    assert list(back) == list(made)
    for col, values in made.items():
        assert back[col].dtype == values.dtype, col
        assert np.array_equal(back[col], values), col
    # A year of them, by receipt date; a file that is not this world's is refused.
    years = np.array([dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + int(d)).year
                      for d in made["receipt_date"]])
    lo, hi = ref.day_number("2020-01-01"), ref.day_number("2021-01-01")
    part = one_offs.read_truth(out / "truth" / "one_off_cases.parquet", lo, hi)
    assert np.array_equal(part["case_id"], made["case_id"][years == 2020])
    from justice.sim.legacy import magistrates
    from justice.sim.mess import load_mess_levels

    # A file not in order of receipt cannot be read a year at a time: refused, with the file named.
    bad = tmp_path / "one_off_cases.parquet"
    t = pq.read_table(out / "truth" / "one_off_cases.parquet")
    pq.write_table(t.take(np.r_[np.arange(1, t.num_rows), 0]), bad)
    with pytest.raises(SimulationError, match="not in order of receipt"):
        magistrates.emit({**world.tables, "one_off_cases": bad}, np.random.default_rng(1),
                         load_mess_levels()["default"], tmp_path / "m", world.params)
