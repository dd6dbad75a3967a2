"""Benchmark: where linkage loses recall and precision, by mess kind and by system pair.

Run: .venv/bin/python benchmarks/link_diagnose.py [--keys] HOME [HOME ...]

HOME is a linked home with its answer key (e.g. one kept by `benchmarks/link_quality.py --keep`).
It reads truth/records.parquet and truth/identity/record_mess.parquet to measure only; nothing
here feeds back into the pipeline. For each home it prints:

* by mess kind: true pairs with that kind on either record, the share of them the index missed,
  and that kind's share of all missed pairs (a pair with two kinds counts under both); the same
  for false pairs (two people's records put in one person);
* by system pair: true pairs, missed, predicted pairs, false;
* by stage (`misses_by_stage`): where each missed pair was lost, scored below the threshold,
  blocked but scored below `keep_weight` (not stored), or never a candidate; and whether the two
  person ids it was split over have any scored pair between them (so a person-level second pass
  could see them) or none (only better blocking would).

With `--keys`, also: for each candidate blocking key in `CANDIDATE_KEYS` (none of them a rule in
link/model.yaml), how many of the missed pairs that no scored pair between their two person ids
reaches it would make candidates, and how many candidate pairs it would make over the whole
index: what a new blocking rule could buy, and at what cost.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb


def diagnose(home: Path, keys: bool = False) -> str:
    """The tables for one home, as text (with `keys`, the candidate keys' table too)."""
    con = duckdb.connect()
    con.execute(f"attach '{home / 'warehouse.duckdb'}' as wh (read_only)")
    truth = home / "truth"
    # Each record's person in the index and in truth, its mess, and its standardised fields (for
    # the candidate keys).
    con.execute(f"""
        create temp table ev as
        select l.unique_id, l.system, l.person_id as pred, t.person_id as truth,
               coalesce(t.mess, '') as mess, r.* exclude (unique_id, system, record_id),
               split_part(r.middle_names, ' ', 1) as mid1
        from wh.linkage.person_links l join read_parquet('{truth / 'records.parquet'}') t
        using (system, record_id) join wh.linkage.records r using (unique_id)
    """)
    con.execute("""
        create temp table tp as
        select a.system as sa, b.system as sb, a.mess as ma, b.mess as mb, a.pred = b.pred as found
        from ev a join ev b on a.truth = b.truth and a.unique_id < b.unique_id
    """)
    con.execute("""
        create temp table fp as
        select a.system as sa, b.system as sb, a.mess as ma, b.mess as mb
        from ev a join ev b on a.pred = b.pred and a.unique_id < b.unique_id and a.truth <> b.truth
    """)
    out = [f"== {home}"]
    tot_true, tot_missed = con.execute("select count(*), count(*) filter (where not found) from tp").fetchone()
    tot_pred = con.execute("select count(*) from ev a join ev b on a.pred = b.pred "
                           "and a.unique_id < b.unique_id").fetchone()[0]
    tot_false = con.execute("select count(*) from fp").fetchone()[0]
    out.append(f"true pairs {tot_true:,}, missed {tot_missed:,} (recall {1 - tot_missed / tot_true:.4f}); "
               f"predicted {tot_pred:,}, false {tot_false:,} (precision {1 - tot_false / tot_pred:.4f})")
    rows = con.execute("""
        with k as (
            select found, unnest(list_distinct(list_filter(string_split(ma || ',' || mb, ','),
                                                            lambda x: x <> ''))) as kind from tp
            union all select found, '(no mess on either record)' from tp where ma = '' and mb = ''),
        f as (
            select unnest(list_distinct(list_filter(string_split(ma || ',' || mb, ','),
                                                     lambda x: x <> ''))) as kind from fp
            union all select '(no mess on either record)' from fp where ma = '' and mb = '')
        select kind, t.n, t.missed, coalesce(f.n, 0)
        from (select kind, count(*) as n, count(*) filter (where not found) as missed from k group by kind) t
        full join (select kind, count(*) as n from f group by kind) f using (kind)
        order by t.missed desc nulls last, kind
    """).fetchall()
    out.append(f"{'mess kind (either record)':32} {'true pairs':>10} {'missed':>8} {'miss %':>7} "
               f"{'% of missed':>11} {'false':>7} {'% of false':>10}")
    for kind, n, missed, false in rows:
        n, missed = n or 0, missed or 0
        out.append(f"{kind:32} {n:>10,} {missed:>8,} {100 * missed / n if n else 0:>6.1f}% "
                   f"{100 * missed / tot_missed if tot_missed else 0:>10.1f}% {false:>7,} "
                   f"{100 * false / tot_false if tot_false else 0:>9.1f}%")
    out.append("")
    rows = con.execute("""
        with t as (select least(sa, sb) as s1, greatest(sa, sb) as s2, count(*) as n,
                          count(*) filter (where not found) as missed from tp group by all),
        f as (select least(sa, sb) as s1, greatest(sa, sb) as s2, count(*) as n from fp group by all)
        select s1, s2, coalesce(t.n, 0), coalesce(t.missed, 0), coalesce(f.n, 0)
        from t full join f using (s1, s2) order by 4 desc
    """).fetchall()
    out.append(f"{'system pair':28} {'true pairs':>10} {'missed':>8} {'recall':>7} {'false':>7}")
    for s1, s2, n, missed, false in rows:
        out.append(f"{s1 + '-' + s2:28} {n:>10,} {missed:>8,} {1 - missed / n if n else 1:>7.4f} {false:>7,}")
    out.append("")
    out += misses_by_stage(con, home)
    if keys:
        out += ["", *unreached_by_keys(con, home)]
    con.close()
    return "\n".join(out)


def misses_by_stage(con: duckdb.DuckDBPyConnection, home: Path) -> list[str]:
    """Missed true pairs by where they were lost (needs the `ev` table of `diagnose`)."""
    from justice.link.blocking import rule_texts
    from justice.link.model import load_model

    model = load_model(home)[0]
    threshold = float(model["justice"]["thresholds"]["match_weight"])
    # A missed pair was a candidate when a blocking rule's SQL holds for it (equal block keys
    # are not the test: a side rule's records with a date of birth share a key, see blocking.py).
    any_rule = " or ".join(f"coalesce(({r}), false)" for r in rule_texts(model))
    con.execute("""
        create temp table missed as
        select a.unique_id as ua, b.unique_id as ub, a.pred as pa, b.pred as pb
        from ev a join ev b on a.truth = b.truth and a.unique_id < b.unique_id and a.pred <> b.pred
    """)
    con.execute(f"""
        create temp table blocked as
        select m.ua, m.ub from missed m
        join wh.linkage.records l on l.unique_id = m.ua join wh.linkage.records r on r.unique_id = m.ub
        where {any_rule};
        create temp table person_pairs as
        select distinct least(a.pred, b.pred) as p1, greatest(a.pred, b.pred) as p2
        from wh.linkage.pairs p join ev a on a.unique_id = p.unique_id_l join ev b on b.unique_id = p.unique_id_r
        where a.pred <> b.pred
    """)
    rows = con.execute(f"""
        select case when p.match_weight >= {threshold} then 'scored at or above the threshold, kept apart'
                    when p.match_weight is not null then 'scored below the threshold'
                    when b.ua is not null then 'blocked, scored below keep_weight'
                    else 'never a candidate (no blocking rule)' end as stage,
               count(*) as n,
               count(*) filter (where pp.p1 is not null) as persons_compared
        from missed m
        left join wh.linkage.pairs p on p.unique_id_l = least(m.ua, m.ub) and p.unique_id_r = greatest(m.ua, m.ub)
        left join blocked b on b.ua = m.ua and b.ub = m.ub
        left join person_pairs pp on pp.p1 = least(m.pa, m.pb) and pp.p2 = greatest(m.pa, m.pb)
        group by all order by n desc
    """).fetchall()
    total = sum(r[1] for r in rows)
    out = [(f"missed pairs by stage (threshold {threshold:+.2f}); 'person ids compared': the two ids it is "
            "split over have a scored pair between them"),
           f"{'stage':44} {'missed':>8} {'share':>6} {'person ids compared':>20}"]
    for stage, n, compared in rows:
        out.append(f"{stage:44} {n:>8,} {100 * n / total if total else 0:>5.1f}% {compared:>20,}")
    return out


# Blocking keys tried on the missed pairs (SQL over linkage.records, `mid1` the first middle
# name): each a record's value; two records with the same value would be a candidate pair.
CANDIDATE_KEYS = {
    "surname sound + birth year": "surname_sound || '|' || birth_year",
    "date of birth + sex + postcode district": "dob || '|' || sex || '|' || postcode_district",
    "surname + postcode district": "surname || '|' || postcode_district",
    "date of birth + forename initial": "dob || '|' || left(forename, 1)",
    "date of birth + surname initial": "dob || '|' || left(surname, 1)",
    "postcode alone": "postcode",
    "middle names + birth year": "middle_names || '|' || birth_year",
    "birth year, day and month either way, surname sound":
        "birth_year || '|' || least(month(dob), day(dob)) || '|' || greatest(month(dob), day(dob)) || '|' || surname_sound",
    "forename + surname sound": "forename || '|' || surname_sound",
    "surname + forename sound": "surname || '|' || forename_sound",
    "forename, first middle name and surname in any order": "list_sort([forename, mid1, surname])::varchar",
    "surname (Mc/Mac one way) + forename initial + birth year":
        "surname_key || '|' || left(forename, 1) || '|' || birth_year",
    "date of birth + postcode district": "dob || '|' || postcode_district",
    "forename + day and month of birth": "forename || '|' || strftime(dob, '%m%d')",
    "surname + day and month of birth": "surname || '|' || strftime(dob, '%m%d')",
}


def unreached_by_keys(con: duckdb.DuckDBPyConnection, home: Path) -> list[str]:
    """Per candidate key: the missed pairs between person ids with no scored pair between them
    that it would make candidates, and the candidate pairs it would make in all (needs the
    `missed` and `person_pairs` tables of `misses_by_stage`)."""
    con.execute("""
        create temp table unreached as
        select ua, ub, least(pa, pb) as p1, greatest(pa, pb) as p2 from missed
        anti join person_pairs pp on pp.p1 = least(pa, pb) and pp.p2 = greatest(pa, pb)
    """)
    n, splits = con.execute("select count(*), count(distinct (p1, p2)) from unreached").fetchone()
    records = con.execute("select count(*) from ev").fetchone()[0]
    out = [(f"== {home}: {n:,} missed pairs between {splits:,} pairs of person ids that no scored pair "
            f"reaches ({records:,} records)"),
           f"{'candidate key':58} {'reaches':>8} {'of splits':>9} {'pairs it makes':>15}"]
    for name, expr in CANDIDATE_KEYS.items():
        con.execute(f"create or replace temp table k as select unique_id, {expr} as k from ev where ({expr}) is not null")
        cost = con.execute("select coalesce(sum(c * (c - 1) / 2), 0) from (select count(*) as c from k group by k)").fetchone()[0]
        hit, hit_splits = con.execute("""
            select count(*), count(distinct (p1, p2)) from unreached u
            join k a on a.unique_id = u.ua join k b on b.unique_id = u.ub where a.k = b.k""").fetchone()
        out.append(f"{name:58} {hit:>8,} {hit_splits:>9,} {int(cost):>15,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", action="store_true", help="also try the candidate blocking keys on the missed pairs")
    parser.add_argument("homes", type=Path, nargs="+")
    args = parser.parse_args()
    for home in args.homes:
        print(diagnose(home, keys=args.keys))
        print()


if __name__ == "__main__":
    main()
