"""Write every legacy system's extract and the answer key `truth/records.parquet`.

The person-bearing systems (`SYSTEMS`) hold the records linkage works on; the reference sources
(`REFERENCE_SOURCES`, such as the court register) hold no people and add no answer-key rows.
Each system draws from its own random stream, so adding mess to one system does not change
another's extract. The answer key has one row per person-bearing record: `system`,
`record_id` (the record's key as the platform will see it), `person_id`, and `mess` (the kinds of
error applied to that record, comma-separated). The same answer key one row per (record, kind)
is `truth/identity/record_mess.parquet`, with `other_person_id` for the kinds that put another
real person's identity or identifier on the record (borrowed_identity, pnc_wrong_person,
cro_wrong_person, prison_number_reused). Person-level traits (justice.sim.legacy.traits) are
drawn once, from their own stream, and written to `truth/identity/identity_traits.parquet`
and `truth/identity/addresses.parquet`.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from justice.sim import mess as mess_mod
from justice.sim import reference as ref
from justice.sim.legacy import traits as traits_mod
from justice.sim.params import SimulationParams

SYSTEMS = ("magistrates", "crown", "prison", "probation", "interventions")
REFERENCE_SOURCES = ("court_register",)


def emit_legacy(tables: dict, params: SimulationParams, out: Path, *, prison_db: str | None = None,
                progress: Callable[[str], None] = lambda _: None) -> pa.Table:
    """Emit every system under `out/legacy/<system>/` and return the answer key."""
    rates = mess_mod.load_mess_levels()[params.mess]
    # Spawned children depend only on their index, so a source added at the end leaves the
    # earlier systems' streams, and their extracts, unchanged.
    everything = SYSTEMS + REFERENCE_SOURCES
    seeds = np.random.SeedSequence([params.seed, 7_041]).spawn(len(everything))
    # Traits have their own stream, apart from the systems' spawned ones.
    traits_rng = np.random.default_rng(np.random.SeedSequence([params.seed, 7_041, 1]))
    start, end = ref.day_number(params.start), ref.day_number(params.end)
    traits = traits_mod.make_traits(traits_rng, tables, rates, start, end)
    tables = {**tables, "_traits": traits}
    keys = []
    for system, seed in zip(everything, seeds):
        progress(f"legacy {system}")
        folder = Path(out) / "legacy" / system
        # A re-run replaces the folder whole: no stale file from an earlier run survives.
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        module = importlib.import_module(f"justice.sim.legacy.{system}")
        rng = np.random.default_rng(seed)
        if system == "prison":
            key = module.emit(tables, rng, rates, folder, params, db_url=prison_db)
        else:
            key = module.emit(tables, rng, rates, folder, params)
        if "other_person_id" not in key.column_names:
            key = key.append_column("other_person_id", pa.nulls(len(key), pa.string()))
        keys.append(key.select(["system", "record_id", "person_id", "mess", "other_person_id"]))
    records = pa.concat_tables(keys)
    truth = Path(out) / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    pq.write_table(records.drop_columns(["other_person_id"]), truth / "records.parquet",
                   compression="zstd")
    identity = truth / "identity"
    identity.mkdir(exist_ok=True)
    pq.write_table(record_mess(records), identity / "record_mess.parquet", compression="zstd")
    for name, table in traits_mod.traits_tables(traits, tables["persons"]).items():
        pq.write_table(table, identity / f"{name}.parquet", compression="zstd")
    return records.drop_columns(["other_person_id"])


def record_mess(records: pa.Table) -> pa.Table:
    """The answer key long: one row per record and kind of mess (clean records have none)."""
    kinds = pc.split_pattern(records.column("mess"), ",")
    flat = pc.list_flatten(kinds)
    parent = pc.list_parent_indices(kinds)
    keep = pc.not_equal(flat, "")
    flat, parent = flat.filter(keep), parent.filter(keep)
    other = records.column("other_person_id").take(parent)
    names = sorted(traits_mod.OTHER_PERSON_KINDS)
    other = pc.if_else(pc.is_in(flat, pa.array(names)), other, pa.scalar(None, pa.string()))
    return pa.table({
        "system": records.column("system").take(parent),
        "record_id": records.column("record_id").take(parent),
        "person_id": records.column("person_id").take(parent),
        "kind": flat,
        "other_person_id": other,
    })
