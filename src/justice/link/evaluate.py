"""Linkage quality against the simulator's answer key (truth/records.parquet).

Pairwise measures count record pairs: a pair is *predicted* if both records got the same
`person_id`, *true* if both belong to the same true person. Precision = true predicted pairs /
predicted pairs; recall = true predicted pairs / true pairs; F1 their harmonic mean. They are
computed from the contingency table of (predicted cluster, true person) without listing pairs,
so they are exact at any size. Per system pair (crown-magistrates, prison-prison, ...) the same
counts are split by the two records' systems.

Cluster measures: B-cubed precision and recall (per record: the share of its predicted cluster
that is truly its person, and the share of its person that is in its predicted cluster,
averaged over records), and the share of true people whose records form exactly one predicted
cluster with nothing else in it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from justice.errors import ConfigError
from justice.link.store import table_exists


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def load_truth(con: duckdb.DuckDBPyConnection, truth_dir: Path, links: str = "linkage.person_links") -> None:
    """`_eval`: each linked record with its predicted and true person (and mess labels)."""
    path = Path(truth_dir) / "records.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no answer key at {path}")
    con.execute(f"""
        create or replace temp table _eval as
        select l.system, l.record_id, l.person_id as pred, t.person_id as truth, t.mess
        from {links} l join read_parquet('{path}') t using (system, record_id)
    """)


def pairwise(con: duckdb.DuckDBPyConnection, where: str = "true") -> dict[str, float]:
    """Pairwise precision, recall, F1 over `_eval` rows matching `where`."""
    tp, pred, true = con.execute(f"""
        with e as (select * from _eval where {where}),
        cell as (select pred, truth, count(*)::hugeint as n from e group by all),
        p as (select count(*)::hugeint as n from e group by pred),
        t as (select count(*)::hugeint as n from e group by truth)
        select (select sum(n * (n - 1) / 2) from cell), (select sum(n * (n - 1) / 2) from p),
               (select sum(n * (n - 1) / 2) from t)
    """).fetchall()[0]
    tp, pred, true = int(tp or 0), int(pred or 0), int(true or 0)
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall),
            "true_pairs": true, "predicted_pairs": pred, "correct_pairs": tp}


def by_system_pair(con: duckdb.DuckDBPyConnection, where: str = "true") -> list[dict]:
    """Pairwise precision, recall and F1 for each pair of systems (a <= b), over `_eval` rows
    matching `where`."""
    rows = con.execute(f"""
        with e as (select * from _eval where {where}),
        cell as (select pred, truth, system, count(*)::hugeint as n from e group by all),
        -- pairs within one (pred, truth) cell split by the two records' systems
        cp as (select a.system as s1, b.system as s2,
                      sum(case when a.system = b.system then a.n * (a.n - 1) / 2 else a.n * b.n end) as k
               from cell a join cell b on a.pred = b.pred and a.truth = b.truth and a.system <= b.system
               group by all),
        pc as (select pred, system, count(*)::hugeint as n from e group by all),
        pp as (select a.system as s1, b.system as s2,
                      sum(case when a.system = b.system then a.n * (a.n - 1) / 2 else a.n * b.n end) as k
               from pc a join pc b on a.pred = b.pred and a.system <= b.system group by all),
        tc as (select truth, system, count(*)::hugeint as n from e group by all),
        tp as (select a.system as s1, b.system as s2,
                      sum(case when a.system = b.system then a.n * (a.n - 1) / 2 else a.n * b.n end) as k
               from tc a join tc b on a.truth = b.truth and a.system <= b.system group by all)
        select s1, s2, coalesce(cp.k, 0), coalesce(pp.k, 0), coalesce(tp.k, 0)
        from tp full join pp using (s1, s2) left join cp using (s1, s2)
        order by s1, s2
    """).fetchall()
    out = []
    for s1, s2, correct, pred, true in rows:
        correct, pred, true = int(correct), int(pred), int(true)
        p = correct / pred if pred else 1.0
        r = correct / true if true else 1.0
        out.append({"systems": f"{s1}-{s2}", "precision": p, "recall": r, "f1": _f1(p, r),
                    "true_pairs": true, "predicted_pairs": pred})
    return out


def cluster_metrics(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """B-cubed precision, recall and F1, and the share of people whose cluster is exactly right."""
    bp, br, exact = con.execute("""
        with cell as (select pred, truth, count(*)::double as n from _eval group by all),
        ps as (select pred, count(*)::double as n from _eval group by pred),
        ts as (select truth, count(*)::double as n from _eval group by truth),
        b as (select sum(c.n * c.n / p.n) as bp, sum(c.n * c.n / t.n) as br
              from cell c join ps p using (pred) join ts t using (truth)),
        ex as (select count(*) filter (where c.n = p.n and c.n = t.n)::double / (select count(*) from ts) as exact
               from cell c join ps p using (pred) join ts t using (truth))
        select b.bp / (select count(*) from _eval), b.br / (select count(*) from _eval), ex.exact from b, ex
    """).fetchall()[0]
    return {"bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": _f1(bp, br), "people_exactly_right": exact}


def person_counts(con: duckdb.DuckDBPyConnection, where: str = "true") -> dict[str, int]:
    """True people and person_ids over `_eval` rows matching `where`, and the two linkage errors
    that part them: a person split over k ids adds k - 1 ids, an id holding m people saves m - 1.
    Exactly, person_ids = true_people + extra_ids_from_splits - ids_saved_by_merges. Of the
    extra ids, those whose records (beside the person's largest piece) all carry another identity
    (an alias or a borrowed identity) are counted apart: no name-based linker can join them."""
    people, ids, cells, other_identity = con.execute(f"""
        with cell as (
            select pred, truth, count(*) as n,
                   bool_and(list_has_any(string_split(coalesce(mess, ''), ','),
                                         ['alias', 'borrowed_identity'])) as other_identity
            from _eval where {where} group by all),
        ranked as (select *, row_number() over (partition by truth order by n desc, pred) as piece
                   from cell)
        select count(distinct truth), count(distinct pred), count(*),
               count(*) filter (where piece > 1 and other_identity)
        from ranked
    """).fetchall()[0]
    return {"true_people": int(people), "person_ids": int(ids),
            "extra_ids_from_splits": int(cells - people), "ids_saved_by_merges": int(cells - ids),
            "extra_ids_of_other_identities": int(other_identity)}


def false_pairs_by_cause(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict[str, int]:
    """False pairs (two people's records under one person_id) by cause:

    - `borrowed_with_lender`: a record given under a borrowed identity put with the person it
      names (the lender, or the lender's namesake: someone of the same name and date of birth),
      or with another person's record given under the same lender's identity (two people naming
      one third): what the record says, which no name-based linker can tell apart;
    - `borrowed_with_other`: such a record put with anyone else;
    - `borrower_with_lender`: neither record borrowed, but one person gives the other's identity
      (or their namesake's) on some record: the borrower's own records and the lender's joined
      through the borrowed ones, which match the borrower by an identifier or alias link and the
      lender by name and date of birth;
    - `other`: the rest (the linker's own errors).

    Lenders are truth/identity/record_mess.parquet's other_person_id; namesakes are read from
    truth/persons.parquet (same forename, surname and date of birth). For measuring only."""
    mess = Path(truth_dir) / "identity" / "record_mess.parquet"
    persons = Path(truth_dir) / "persons.parquet"
    if not mess.exists():
        mess_sql = ("select null::varchar as system, null::varchar as record_id, "
                    "null::varchar as kind, null::varchar as other_person_id where false")
    else:
        mess_sql = f"select system, record_id, kind, other_person_id from read_parquet('{mess}')"
    # Each person with the people who share their name and date of birth (themselves included).
    alike = (f"""select a.person_id as person, b.person_id as alike
                 from read_parquet('{persons}') a join read_parquet('{persons}') b
                 using (forename, surname, dob)""" if persons.exists() else
             "select truth as person, truth as alike from (select distinct truth from _eval)")
    rows = con.execute(f"""
        with alike as ({alike}),
        lent as (select system, record_id, any_value(other_person_id) as lender
                 from ({mess_sql}) where kind = 'borrowed_identity' group by all),
        e as (select e.pred, e.truth, b.lender, count(*)::hugeint as n
              from _eval e left join lent b using (system, record_id) group by all),
        -- Borrower and lender (either way round), the lender widened to their namesakes.
        lends as (select distinct e.truth as borrower, coalesce(al.alike, e.lender) as lender
                  from e left join alike al on al.person = e.lender where e.lender is not null),
        fp as (select a.truth as ta, b.truth as tb, a.lender as la, b.lender as lb, a.n * b.n as n
               from e a join e b on a.pred = b.pred and a.truth < b.truth)
        select case when la = tb or lb = ta or la = lb
                         or exists (select 1 from alike al where al.person = la and al.alike = tb)
                         or exists (select 1 from alike al where al.person = lb and al.alike = ta)
                         or exists (select 1 from alike x join alike y on x.alike = y.alike
                                    where x.person = la and y.person = lb)
                    then 'borrowed_with_lender'
                    when la is not null or lb is not null then 'borrowed_with_other'
                    when exists (select 1 from lends l where (l.borrower = ta and l.lender = tb)
                                                          or (l.borrower = tb and l.lender = ta))
                    then 'borrower_with_lender'
                    else 'other' end, sum(n)
        from fp group by all
    """).fetchall()
    out = {"borrowed_with_lender": 0, "borrowed_with_other": 0, "borrower_with_lender": 0, "other": 0}
    out.update({k: int(v) for k, v in rows})
    return out


def _missed(con: duckdb.DuckDBPyConnection, where: str) -> int:
    """True pairs among the `_eval` rows matching `where` whose two records got different ids."""
    true, correct = con.execute(f"""
        with e as (select * from _eval where {where}),
        cell as (select pred, truth, count(*)::hugeint as n from e group by all),
        t as (select truth, count(*)::hugeint as n from e group by truth)
        select (select sum(n * (n - 1) / 2) from t), (select sum(n * (n - 1) / 2) from cell)
    """).fetchall()[0]
    return int(true or 0) - int(correct or 0)


def missed_pairs_by_mess(con: duckdb.DuckDBPyConnection) -> dict:
    """Missed pairs (two records of one true person under different person_ids) by the kinds of
    mess the answer key says their records carry: for each kind, the missed pairs at least one of
    whose records carries it (a pair with two kinds counts under both, so the kinds add up to more
    than the total), and the missed pairs where neither record carries any. Exact and without
    listing pairs: the missed pairs touching kind k are all missed pairs less those among the
    records without k. Reads `_eval` (load_truth); for measuring only."""
    kinds = [k for (k,) in con.execute("""
        select distinct unnest(string_split(mess, ',')) as k from _eval
        where coalesce(mess, '') <> '' order by k""").fetchall() if k]
    total = _missed(con, "true")

    def without(kind: str) -> str:
        return f"not list_contains(string_split(coalesce(mess, ''), ','), '{kind.replace(chr(39), chr(39) * 2)}')"

    by_kind = {k: total - _missed(con, without(k)) for k in kinds}
    return {"missed_pairs": total,
            "by_kind": dict(sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))),
            "neither_record_messy": _missed(con, "coalesce(mess, '') = ''")}


# Two records of one person are *within reach* when a linker reading their fields has some
# evidence that they are one person, given generously (an upper bound, not a rule to link by).
_REACH_EDGE = """
    -- an identifier in common (or one keying error apart), or a link the system asserts
    (a.pnc_core = b.pnc_core or a.cro_core = b.cro_core or a.prison_number = b.prison_number
     or a.crn = b.crn or levenshtein(a.pnc_core, b.pnc_core) <= 1
     or levenshtein(a.cro_core, b.cro_core) <= 1
     or a.same_as = b.unique_id or b.same_as = a.unique_id)
    -- a name alike (either name by sound, a nickname or alias of the forename, a surname
    -- close in spelling or sharing a part) and a date of birth alike (equal, day and month
    -- swapped, within about a year, or missing on either record)
    or ((a.surname_sound = b.surname_sound or a.forename_sound = b.forename_sound
         or len(list_intersect(a.forename_aliases, b.forename_names)) > 0
         or len(list_intersect(b.forename_aliases, a.forename_names)) > 0
         or jaro_winkler_similarity(a.surname, b.surname) >= 0.8
         or len(list_intersect(a.surname_parts, b.surname_parts)) > 0)
        and (a.dob is null or b.dob is null or abs(a.dob - b.dob) <= 400
             or (day(a.dob) = month(b.dob) and month(a.dob) = day(b.dob))))
    -- the same address and a birth year alike
    or (a.postcode = b.postcode and (a.birth_year is null or b.birth_year is null
                                     or abs(a.birth_year - b.birth_year) <= 1))
    -- two systems' records of an event on the same day (a sentence and the reception into prison)
    or (a.system <> b.system and list_has_any(a.event_dates, b.event_dates))
"""


def recall_ceiling(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The most recall any linker reading the records' fields could reach: two records of one
    person are within reach when a chain of that person's records joins them, each step holding
    some evidence (`_REACH_EDGE`: an identifier or asserted link, a name and a date of birth
    alike, an address and birth year, or two systems' records of an event on one day). A record
    under an invented alias or another person's identity with no identifier and no event shared
    with another system is out of reach of its person's other records. Over every
    record and without borrowed-identity records (their pairs, not their bridges). Reads `_eval`
    and `linkage.records`; for measuring only. None if the index has no records table."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not table_exists(con, "linkage", "records"):
        return None
    con.execute("""
        create or replace temp table _reach as
        select row_number() over (order by e.truth, r.unique_id) - 1 as i, e.truth,
               coalesce(e.mess, '') like '%borrowed_identity%' as borrowed, r.*
        from _eval e join linkage.records r using (system, record_id)""")
    edges = con.execute(f"""
        select a.i, b.i from _reach a join _reach b on a.truth = b.truth and a.i < b.i
        where {_REACH_EDGE}""").fetchnumpy()
    meta = con.execute("select i, truth, borrowed from _reach order by i").fetchnumpy()
    n = len(meta["i"])
    left, right = list(edges.values())
    graph = coo_matrix((np.ones(len(left), np.int8), (left, right)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    truth_codes = np.unique(meta["truth"].astype(str), return_inverse=True)[1]

    def pairs(keys: np.ndarray) -> int:
        _, counts = np.unique(keys, return_counts=True, axis=0)
        counts = counts.astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    out = {}
    for name, keep in (("all", np.ones(n, bool)), ("without_borrowed_identities", ~meta["borrowed"])):
        true = pairs(truth_codes[keep])
        reach = pairs(np.stack([truth_codes[keep], comp[keep]], axis=1))
        out[name] = {"true_pairs": true, "reachable_pairs": reach,
                     "recall_ceiling": reach / true if true else 1.0}
    return out


def evaluate(con: duckdb.DuckDBPyConnection, truth_dir: Path, links: str = "linkage.person_links") -> dict:
    """Every measure: overall, per system pair, cluster, and the records truth holds that the
    index does not (and the reverse)."""
    load_truth(con, truth_dir, links)
    path = Path(truth_dir) / "records.parquet"
    missing = con.execute(f"select count(*) from read_parquet('{path}') t anti join {links} l "
                          "using (system, record_id)").fetchall()[0][0]
    extra = con.execute(f"select count(*) from {links} l anti join read_parquet('{path}') t "
                        "using (system, record_id)").fetchall()[0][0]
    # Records under a borrowed identity carry another real person's name and date of birth: by
    # every field a linker reads they are that person (docs/linkage.md, "What the goals count").
    not_borrowed = "coalesce(mess, '') not like '%borrowed_identity%'"
    return {"pairwise": pairwise(con), "pairwise_without_borrowed_identities": pairwise(con, not_borrowed),
            "clusters": cluster_metrics(con), "by_system_pair": by_system_pair(con),
            "by_system_pair_without_borrowed_identities": by_system_pair(con, not_borrowed),
            "people": person_counts(con), "false_pairs": false_pairs_by_cause(con, truth_dir),
            "missed_pairs": missed_pairs_by_mess(con), "recall_ceiling": recall_ceiling(con),
            "records": con.execute("select count(*) from _eval").fetchall()[0][0],
            "truth_records_without_person_id": int(missing), "linked_records_not_in_truth": int(extra)}


def threshold_curve(con: duckdb.DuckDBPyConnection, truth_dir: Path, thresholds: list[float]) -> list[dict]:
    """Pairwise precision/recall/F1 of the scored pairs themselves at each match-weight threshold
    (before clustering), counting true pairs the blocking rules never produced as misses."""
    path = Path(truth_dir) / "records.parquet"
    con.execute(f"""
        create or replace temp table _truth_ids as
        select system || ':' || record_id as unique_id, person_id from read_parquet('{path}')
    """)
    true_pairs = con.execute("select sum(n * (n - 1) / 2)::bigint from (select count(*)::hugeint as n "
                             "from _truth_ids group by person_id)").fetchall()[0][0]
    con.execute("""
        create or replace temp table _scored as
        select p.match_weight, a.person_id = b.person_id as is_match
        from linkage.pairs p join _truth_ids a on a.unique_id = p.unique_id_l
        join _truth_ids b on b.unique_id = p.unique_id_r
    """)
    out = []
    for t in thresholds:
        tp, pred = con.execute(f"select count(*) filter (where is_match), count(*) from _scored "
                               f"where match_weight >= {float(t)}").fetchall()[0]
        p = tp / pred if pred else 1.0
        r = tp / true_pairs if true_pairs else 1.0
        out.append({"threshold": t, "precision": p, "recall": r, "f1": _f1(p, r), "pairs": pred})
    return out


SIMULATED_CLERK = "simulated clerk (answer key)"
CLERICAL_SAMPLE_LIMIT = 2_000
"""The most pairs a clerical sample may hold: all the answer key may teach the pipeline."""


def simulated_clerk(con: duckdb.DuckDBPyConnection, truth_dir: Path,
                    sample: str = "linkage.clerical_sample") -> int:
    """Label the unlabelled pairs of the clerical sample as a clerk who always judges right would:
    match when both records belong to one true person. Reads the answer key for exactly the
    sample's records and nothing else; returns the pairs labelled."""
    path = Path(truth_dir) / "records.parquet"
    if not path.exists():
        raise ConfigError(f"no answer key at {path}: the simulated clerk works only in a simulated world; "
                          "elsewhere clerks label the sample file (justice link calibrate --labels FILE)")
    # The answer key may choose a threshold only through a clerical sample of this size at most
    # (issue 13): a larger table here was not drawn by `draw_sample`, and the clerk refuses it.
    pairs = con.execute(f"select count(*) from {sample}").fetchall()[0][0]
    if pairs > CLERICAL_SAMPLE_LIMIT:
        raise ConfigError(f"{sample} holds {pairs:,} pairs; the simulated clerk labels at most "
                          f"{CLERICAL_SAMPLE_LIMIT:,}, as a clerical team would")
    con.execute(f"""
        create or replace temp table _clerk as
        with s as (select unique_id_l, unique_id_r from {sample} where label is null),
        ids as (select unique_id_l as unique_id from s union select unique_id_r from s),
        t as (select ids.unique_id, k.person_id from ids
              join read_parquet('{path}') k on k.system || ':' || k.record_id = ids.unique_id)
        select s.unique_id_l, s.unique_id_r,
               case when a.person_id = b.person_id then 'match' else 'non_match' end as label
        from s join t a on a.unique_id = s.unique_id_l join t b on b.unique_id = s.unique_id_r
    """)
    con.execute(f"""update {sample} set label = c.label, labelled_by = '{SIMULATED_CLERK}'
                    from _clerk c where {sample}.unique_id_l = c.unique_id_l
                    and {sample}.unique_id_r = c.unique_id_r""")
    return con.execute("select count(*) from _clerk").fetchall()[0][0]
