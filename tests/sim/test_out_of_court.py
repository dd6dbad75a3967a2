"""One-off out-of-court disposals (sim/out_of_court.py): how many, of what kind, to whom, that
the world file is checked, and that they leave the rest of the world as it was."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from worlds import assert_same_world_without

from justice.errors import SimulationError
from justice.sim import out_of_court
from justice.sim import reference as ref

START, END = ref.day_number("2014-01-01"), ref.day_number("2025-12-31")
COURTS = {"court_code": np.array(["B01001", "B02002", "401"], dtype=object),
          "court_type": np.array(["magistrates", "magistrates", "crown"], dtype=object),
          "region": np.array(["London", "Wales", "London"], dtype=object)}


def _disposals(seed: int = 3, persons: int = 50_000, **changes) -> dict[str, np.ndarray]:
    w = ref.world()
    w[out_of_court.WHERE] = {**w[out_of_court.WHERE], **changes}
    return out_of_court.simulate(np.random.default_rng(seed), w, persons, COURTS, START, END)


def test_volume_kinds_offences_and_people_follow_the_world_file():
    spec = ref.world()[out_of_court.WHERE]
    d = _disposals()
    n = len(d["disposal_id"])
    years = (END - START + 1) / 365.25
    expected = spec["disposals_per_1000_persons_per_year"] * 50 * years
    assert abs(n - expected) < 5 * np.sqrt(expected), (n, expected)
    assert ((d["disposal_date"] >= START) & (d["disposal_date"] <= END)).all()
    assert (np.diff(d["disposal_date"]) >= 0).all()
    assert (d["offence_date"] <= d["disposal_date"]).all()
    assert np.median(d["disposal_date"] - d["offence_date"]) <= 1
    kinds, counts = np.unique(d["disposal_type"].astype(str), return_counts=True)
    for kind, share in zip(kinds.tolist(), (counts / n).tolist(), strict=True):
        assert share == pytest.approx(spec["disposals"][kind], abs=0.01), kind
        sel = d["disposal_type"] == kind
        # Each kind's offences are its own mix, named with their group as in offences.csv.
        assert set(d["offence_code"][sel]) <= set(spec["offences"][kind])
        assert np.mean(d["sex"][sel] == "M") == pytest.approx(spec["male_share"][kind], abs=0.02)
        age = (d["offence_date"][sel] - d["dob"][sel]) / 365.25
        assert age.min() >= spec["min_age"][kind] - 1e-9
    off = ref.offences()
    group = dict(zip(off.code.tolist(), off.group.tolist(), strict=True))
    assert all(group[c] == g for c, g in zip(d["offence_code"], d["offence_group"], strict=True))
    warnings = d["disposal_type"] == "cannabis_warning"
    assert set(d["offence_code"][warnings]) == {"DR06002"}
    # Some community resolutions go to children (from 10); no warning or penalty notice does.
    young = (d["offence_date"] - d["dob"]) / 365.25 < 18
    assert young.any() and (d["disposal_type"][young] == "community_resolution").all()
    # Unique ids, each to a person with no other record; regions of the magistrates' courts.
    assert len(set(d["disposal_id"].tolist())) == n == len(set(d["person_id"].tolist()))
    assert d["disposal_id"][0] == b"OD00000001" and d["person_id"][0] == b"PO00000001"
    assert set(d["region"]) == {"London", "Wales"}


def test_the_volume_is_per_person_with_a_career_and_can_be_switched_off():
    small = len(_disposals(persons=10_000)["disposal_id"])
    large = len(_disposals(persons=40_000)["disposal_id"])
    assert large / small == pytest.approx(4, rel=0.06)
    assert len(_disposals(disposals_per_1000_persons_per_year=0)["disposal_id"]) == 0


@pytest.mark.parametrize("changes, says", [
    ({"disposals": {"community_resolution": 0.5, "caution": 0.5}}, "caution is the careers'"),
    ({"disposals": {"community_resolution": 0.5}}, "summing to 1"),
    ({"disposals": "most"}, "summing to 1"),
    ({"offences": {"community_resolution": {"TH04001": 1.0}}}, "needs an offence mix for each"),
    ({"offences": {"community_resolution": {"XX99999": 1.0}, "cannabis_warning": {"DR06002": 1.0},
                   "penalty_notice": {"SN11001": 1.0}}}, "not in offences.csv"),
    ({"male_share": {"community_resolution": 0.7}}, "male_share needs a value for each"),
    ({"male_share": {"community_resolution": 1.7, "cannabis_warning": 0.9, "penalty_notice": 0.8}},
     "male_share.community_resolution must be between"),
    ({"min_age": {"community_resolution": 8, "cannabis_warning": 18, "penalty_notice": 18}},
     "min_age.community_resolution must be between 10"),
    ({"disposals_per_1000_persons_per_year": "lots"}, "disposals_per_1000_persons_per_year must be a number"),
    ({"age": {"gamma_shape": 2.0}}, "one_off_out_of_court.age.gamma_scale is missing"),
])
def test_a_world_file_asking_for_what_the_police_cannot_do_is_refused(changes, says):
    with pytest.raises(SimulationError, match=says):
        _disposals(**changes)


def test_a_world_file_without_them_is_refused_with_the_key_named():
    w = ref.world()
    del w[out_of_court.WHERE]
    with pytest.raises(SimulationError, match="one_off_out_of_court is missing"):
        out_of_court.simulate(np.random.default_rng(1), w, 1_000, COURTS, START, END)


def test_the_rest_of_the_world_is_the_same_with_or_without_them(tmp_path):
    assert_same_world_without(tmp_path, {out_of_court.WHERE: {"disposals_per_1000_persons_per_year": 0}},
                              "out_of_court_disposals", "disposal_id", 500)


def test_written_to_truth_as_their_own_table(small_truth):
    out, world = small_truth
    t = pq.read_table(out / "truth" / "out_of_court_disposals.parquet")
    assert t.num_rows == len(world.tables["out_of_court_disposals"]["disposal_id"]) > 0
    assert str(t.schema.field("person_id").type) == "string"
    assert str(t.schema.field("disposal_date").type) == "date32[day]"
    # In no other truth table: the careers' people and the one-off defendants are others.
    persons = set(pq.read_table(out / "truth" / "persons.parquet", columns=["person_id"]).column(0).to_pylist())
    assert not persons & set(t.column("person_id").to_pylist())
