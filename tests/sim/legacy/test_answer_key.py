"""The answer key: every person-bearing record of every system, keyed as the platform sees it."""

from __future__ import annotations

import pyarrow.parquet as pq

from justice.sim.legacy.emit import SYSTEMS


def test_records_cover_all_five_systems(small_truth):
    out, world = small_truth
    records = pq.read_table(out / "truth" / "records.parquet")
    assert set(records.column_names) >= {"system", "record_id", "person_id", "mess"}
    systems = records.column("system").to_pylist()
    assert set(systems) == set(SYSTEMS)
    keys = list(zip(systems, records.column("record_id").to_pylist()))
    assert len(keys) == len(set(keys)), "record_id must be unique within a system"
    # The careers' people and the one-off summary defendants (truth/persons.parquet holds both).
    people = set(world.tables["persons"]["person_id"]) | {
        p.decode() for p in world.tables["one_off_cases"]["person_id"].tolist()}
    assert set(records.column("person_id").to_pylist()) <= people
    assert set(records.column("person_id").to_pylist()) <= set(
        pq.read_table(out / "truth" / "persons.parquet").column("person_id").to_pylist())
    for system in SYSTEMS:
        assert (out / "legacy" / system).is_dir()


def test_mess_is_recorded_per_record(small_truth):
    out, _ = small_truth
    mess = pq.read_table(out / "truth" / "records.parquet").column("mess").to_pylist()
    messy = [m for m in mess if m]
    assert 0.05 < len(messy) / len(mess) < 0.95
    kinds = {k for m in messy for k in m.split(",")}
    assert {"name_typo", "nickname", "dob_missing"} <= kinds
