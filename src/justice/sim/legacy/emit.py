"""Write every legacy system's extract and the answer key `truth/records.parquet`.

The person-bearing systems (`SYSTEMS`) hold the records linkage works on; the reference sources
(`REFERENCE_SOURCES`, such as the court register) hold no people and add no answer-key rows.
Each system draws from its own random stream, so adding mess to one system does not change
another's extract. The answer key has one row per person-bearing record: `system`,
`record_id` (the record's key as the platform will see it), `person_id`, and `mess` (the kinds of
error applied to that record, comma-separated).
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from justice.sim import mess as mess_mod
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
        keys.append(key.select(["system", "record_id", "person_id", "mess"]))
    records = pa.concat_tables(keys)
    truth = Path(out) / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    pq.write_table(records, truth / "records.parquet", compression="zstd")
    return records
