"""Score one record against the person index and explain the score.

    scorer = Scorer(settings)                      # loads the model and the index once
    result = scorer.score({"forenames": "Jon", "surname": "Smith", "dob": "1980-02-01"})
    result.candidates[0].person_id, result.candidates[0].match_weight
    for step in result.candidates[0].steps: ...    # comparison, level, weight

or for a record already in the index, ``scorer.score("crown:10371735")``. The record (a dict
of the raw fields of link/sources.yaml: forenames, surname, dob, sex, postcode, pnc, cro,
prison_number, crn) is standardised exactly as indexed records are, candidates are found with
the model's blocking rules, and each is scored with the trained Splink model compiled to one
DuckDB query (the same arithmetic as Splink's predict, checked against it by the tests, without
Splink's per-call set-up, so one record scores in milliseconds): the match weight is the prior
plus one weight per comparison (log2 of its Bayes factor, with the term-frequency adjustment on
names folded in).

``scorer.score_many(records, exclude_systems=("interventions",))`` scores a whole list in a few set
queries (1,000 records against a 1,000,000-person index in about 2 s, where one at a time takes
60-100 ms each) with the same arithmetic: each result equals ``score()``'s for that record,
less the candidates of the excluded systems.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pyarrow as pa

from justice.errors import ConfigError
from justice.link import model as mdl
from justice.link.blocking import probe_lookups
from justice.link.standardise import SOURCE_COLUMNS, standardise_raw
from justice.link.store import open_warehouse, require_links, table_exists
from justice.settings import Settings

RAW_FIELDS = tuple(c for c in SOURCE_COLUMNS if c not in ("record_id", "same_as"))


@dataclass
class Step:
    comparison: str
    level: str
    weight: float
    left: str
    right: str


@dataclass
class Candidate:
    unique_id: str
    person_id: str | None
    match_weight: float
    match_probability: float
    steps: list[Step] = field(default_factory=list)


@dataclass
class ScoreResult:
    record: dict
    prior_weight: float
    threshold: float
    candidates: list[Candidate]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def person_id(self) -> str | None:
        """The person the record would join: the best candidate at or above the threshold."""
        best = self.best
        return best.person_id if best and best.match_weight >= self.threshold else None


def _clean_record(record: dict) -> dict:
    unknown = set(record) - set(RAW_FIELDS)
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}; a record has {', '.join(RAW_FIELDS)}")
    out = {k: (None if record.get(k) in (None, "") else str(record[k])) for k in RAW_FIELDS}
    if out["dob"] is not None:
        try:
            out["dob"] = dt.date.fromisoformat(out["dob"]).isoformat()
        except ValueError as exc:
            raise ConfigError(f"dob {record['dob']!r} is not a date in YYYY-MM-DD form") from exc
    return out


# A column of one side of a pair, bare or quoted (Splink's library levels quote their columns).
_COLUMN_REF = re.compile(r'"?\b([a-z][a-z0-9_]*)_(l|r)\b"?')


_PROBE_REF = re.compile(r"\br\.([a-z][a-z0-9_]*)\b")


def _sides(sql: str) -> str:
    """A Splink level condition (``forename_l = forename_r``) over tables l and r."""
    return _COLUMN_REF.sub(lambda m: f"{m.group(2)}.{m.group(1)}", sql)


def _scoring_parts(model: dict, tf_inline: bool = False) -> tuple[list[str], str, list[str], list[str], str, list[str]]:
    """The pieces of the scoring query shared by one-record and batch scoring: gamma selects,
    term-frequency joins (over aliases l and r), tf columns, weight columns, the sum of the
    weights, and the comparison names. With `tf_inline` there are no joins: the candidates
    (l) carry their term frequencies as columns ``tf_<column>`` and the probe's are bound as
    ``$tfr_<column>``."""
    selects, weights, names, tf_joins = [], [], [], {}
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        names.append(name)
        levels = comp["comparison_levels"]
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        whens, mw, tfw = [], [], []
        exact_u = {}
        for lv in non_null:
            col = lv.get("tf_adjustment_column")
            if col and lv["sql_condition"].replace(" ", "").replace('"', "") == f"{col}_l={col}_r":
                exact_u[col] = lv["u_probability"]
        for lv in levels:
            if lv.get("is_null_level"):
                gamma = -1
            else:
                gamma = len(non_null) - 1 - non_null.index(lv)
            cond = lv["sql_condition"]
            if cond.strip().upper() != "ELSE":
                whens.append(f"when {_sides(cond)} then {gamma}")
            if gamma == -1:
                continue
            m, u = lv["m_probability"], lv["u_probability"]
            mw.append(f"when {gamma} then {math.log2(m / u)!r}")
            col = lv.get("tf_adjustment_column")
            weight = float(lv.get("tf_adjustment_weight", 1.0) or 0.0)
            if col and weight and cond.strip().upper() != "ELSE":
                tf_joins[col] = True
                tf = f"greatest(coalesce(tfl_{col}, tfr_{col}), coalesce(tfr_{col}, tfl_{col}), 0.0)"
                tfw.append(f"when {gamma} then case when coalesce(tfl_{col}, tfr_{col}) "
                           f"is not null then {weight!r} * ({math.log2(exact_u[col])!r} - log2({tf})) else 0 end")
        selects.append(f"case {' '.join(whens)} else 0 end as gamma_{name}")
        weights.append((name, mw, tfw))
    if tf_inline:
        tf_from = ""
        tf_cols = [f"l.tf_{c} as tfl_{c}, $tfr_{c}::double as tfr_{c}" for c in tf_joins]
    else:
        tf_from = "".join(
            f" left join wh.linkage.tf_{c} tf_{c}_l on tf_{c}_l.{c} = l.{c}"
            f" left join wh.linkage.tf_{c} tf_{c}_r on tf_{c}_r.{c} = r.{c}" for c in tf_joins)
        tf_cols = [f"tf_{c}_l.tf_{c} as tfl_{c}, tf_{c}_r.tf_{c} as tfr_{c}" for c in tf_joins]
    mw_cols = []
    for name, mw, tfw in weights:
        mw_cols.append(f"case gamma_{name} {' '.join(mw)} else 0 end as mw_{name}")
        mw_cols.append(f"case gamma_{name} {' '.join(tfw)} else 0 end as mw_tf_adj_{name}" if tfw
                       else f"0.0 as mw_tf_adj_{name}")
    total = " + ".join(f"mw_{n} + mw_tf_adj_{n}" for n in names)
    return selects, tf_from, tf_cols, mw_cols, total, names


# Level conditions that cost far more than an equality to evaluate (string similarity over
# names and lists of names): weight_upper_bound stops at the first of these.
_COSTLY = re.compile(r"jaro|winkler|list_|array_|damerau|jaccard", re.IGNORECASE)


def _double(x: float) -> str:
    """A DOUBLE literal. (DuckDB reads 7.27 as a DECIMAL, and a sum of a dozen decimals with
    different scales is wide decimal arithmetic: the bound over 25 million candidate pairs took
    40% longer than in doubles.)"""
    return f"({float(x)!r})::double"


def _plain_weight(level: dict) -> float:
    """A level's weight without term-frequency adjustment (0 for the null level)."""
    return 0.0 if level.get("is_null_level") else math.log2(level["m_probability"] / level["u_probability"])


def weight_upper_bound(model: dict) -> tuple[str, list[str], list[str]] | None:
    """A cheap upper bound on a pair's match weight under `model` (Splink settings with trained
    m and u), for dropping candidate pairs that cannot reach the keep threshold before Splink
    scores them in full: (SQL over the pair's ``<column>_l`` / ``<column>_r`` columns and
    ``tf_<column>_l`` / ``tf_<column>_r`` term frequencies, the columns it reads, the
    term-frequency columns it reads), or None when the model has no such bound.

    Per comparison the levels are taken in order, as Splink's CASE takes them: a cheap level
    (equalities, dates, short edits) is evaluated and, when true, gives its own weight (with the
    term-frequency adjustment, as compile_scoring_sql computes it); at the first costly level
    (string similarity) evaluation stops and the bound is the largest weight of that level and
    every later one. The bound is therefore never below the weight Splink gives the pair: a pair
    it drops would have been dropped by Splink's own threshold. A comparison whose costly tail
    holds a term-frequency level has no bound (None)."""
    found = _bound_terms(model)
    if found is None:
        return None
    terms, cols, tf_cols = found
    prior = model["probability_two_random_records_match"]
    return f"{_double(math.log2(prior / (1 - prior)))} + " + " + ".join(terms), cols, tf_cols


def weight_bound_tightening(model: dict) -> str | None:
    """What a tighter bound takes off weight_upper_bound's, as SQL over the same columns (never
    positive): for the pairs the first bound keeps, `bound + tightening` is still an upper bound
    on the pair's weight. In a costly tail the heaviest level is tested (costly or not) as long as
    it weighs more than every other level left and reads only columns the first bound reads, and
    only then is the rest's largest weight taken: a name that differs from the other record's is
    bounded by the similarity it really has, not by the best similarity level's weight (a swapped,
    misspelt forename and surname weigh 12 bits; most pairs that differ in forename reach no
    similarity level). Only the comparisons the tests change are in it (the costly tests are
    the new work; DuckDB evaluates the bound itself again on the pairs it keeps). None when there
    is no bound, or nothing to test."""
    loose = _bound_terms(model)
    if loose is None:
        return None
    terms, cols, _ = loose
    readable = {c for c in cols if any(re.search(rf"\b{c}_[lr]\b", t) for t in terms)}
    tight = _bound_terms(model, readable)
    changed = [f"(({t}) - ({lt}))" for t, lt in zip(tight[0], terms) if t != lt]
    return " + ".join(changed) if changed else None


def _bound_terms(model: dict, readable: set[str] | None = None) -> tuple[list[str], list[str], list[str]] | None:
    """weight_upper_bound's terms, one per comparison, the columns and term-frequency columns
    they read; with `readable`, the costly levels reading only those columns are tested
    (weight_bound_tightening)."""
    terms, cols, tf_cols = [], set(), []
    for comp in model["comparisons"]:
        levels = comp["comparison_levels"]
        exact_u = {}
        for lv in levels:
            col = lv.get("tf_adjustment_column")
            if col and not lv.get("is_null_level") and \
                    lv["sql_condition"].replace(" ", "").replace('"', "") == f"{col}_l={col}_r":
                exact_u[col] = lv["u_probability"]

        def weight(lv: dict, exact_u: dict = exact_u) -> str:
            if lv.get("is_null_level"):
                return _double(0.0)
            w = _double(math.log2(lv["m_probability"] / lv["u_probability"]))
            col = lv.get("tf_adjustment_column")
            tw = float(lv.get("tf_adjustment_weight", 1.0) or 0.0)
            if col and tw and lv["sql_condition"].strip().upper() != "ELSE":
                if col not in exact_u:
                    raise ValueError(col)
                if col not in tf_cols:
                    tf_cols.append(col)
                tf = f"greatest(coalesce(tf_{col}_l, tf_{col}_r), coalesce(tf_{col}_r, tf_{col}_l), 0.0)"
                w = (f"({w} + case when coalesce(tf_{col}_l, tf_{col}_r) is not null then "
                     f"{_double(tw)} * ({_double(math.log2(exact_u[col]))} - log2({tf})) else {_double(0.0)} end)")
            return w

        whens, tail = [], None
        has_else = any(lv["sql_condition"].strip().upper() == "ELSE" for lv in levels)
        try:
            for i, lv in enumerate(levels):
                cond = lv["sql_condition"]
                cols.update(m.group(1) for m in _COLUMN_REF.finditer(cond))
                if cond.strip().upper() == "ELSE":
                    tail = weight(lv)
                    break
                if _COSTLY.search(cond):
                    rest = levels[i:]
                    if any(r.get("tf_adjustment_column") for r in rest):
                        return None
                    # A cheap level that weighs at least every level left is tested, not assumed:
                    # when it holds, the pair's level is it or a costly one before it, weighing
                    # no more; when not, the bound is the most of the others left.
                    while rest:
                        top = max(rest, key=_plain_weight)
                        top_cond = top["sql_condition"]
                        if top.get("is_null_level") or top_cond.strip().upper() == "ELSE":
                            break
                        reads = {m.group(1) for m in _COLUMN_REF.finditer(top_cond)}
                        if _COSTLY.search(top_cond) and not (
                                readable is not None and len(rest) > 1
                                and _plain_weight(top) > max(_plain_weight(r) for r in rest if r is not top)):
                            break
                        if readable is not None and not reads <= readable:
                            # (The tightening reads no column the first bound does not: a cheap
                            # level the first bound did not reach may read one.)
                            break
                        cols.update(reads)
                        whens.append(f"when {top_cond} then {_double(_plain_weight(top))}")
                        rest = [r for r in rest if r is not top]
                    # (With no ELSE level a pair may meet no level, which weighs 0.)
                    tail = _double(max([_plain_weight(r) for r in rest] + ([] if has_else else [0.0])))
                    break
                whens.append(f"when {cond} then {weight(lv)}")
        except ValueError:
            return None
        if tail is None:  # no ELSE level: Splink's CASE gives no level, weight 0
            tail = _double(0.0)
        terms.append(f"case {' '.join(whens)} else {tail} end" if whens else tail)
    return terms, sorted(cols), tf_cols


def prior_weight(model: dict) -> float:
    """The match weight of the prior: log2 of the odds that two random records match."""
    prior = model["probability_two_random_records_match"]
    return math.log2(prior / (1 - prior))


def compile_scoring_sql(model: dict, index: str, probe: str) -> tuple[str, str, list[str]]:
    """The queries that find a probe's candidates and score them.

    It reproduces Splink's arithmetic exactly (tests check it against Splink's own scores): per
    comparison a level (gamma: -1 for the null level, then counting down to 0 for ELSE), its
    weight log2(m/u), and for a level with a term-frequency column the adjustment
    log2(u of the exact level) - log2(term frequency of the value); the match weight is the
    prior's log2 odds plus the sum. Returns the query that finds candidates' record numbers (the
    probe's values bound as $r_<column>), the scoring query (over the candidates' records, with
    their term frequencies as columns ``tf_<column>``, in the registered table link_candidates;
    the probe's term frequencies bound as $tfr_<column>), and the comparison names."""
    prior_w = prior_weight(model)
    # Candidates: the probe's keys looked up in linkage.block_keys (see blocking.py); a rule
    # that has no key is scanned for, with the probe's values bound as $r_<column>.
    keyed, unkeyed = probe_lookups(model, "r")
    scans = _probe_scans(unkeyed, index)
    lookups = [f"select unnest(case when {present} then {key} end) as key from {probe} r"
               for key, present in keyed]
    keys_sql = " union all ".join(lookups) if lookups else "select null::ubigint as key where false"
    candidates_sql = (f"select record_no from wh.linkage.block_keys where key in "
                      f"(select key from ({keys_sql}) where key is not null)")
    if scans:
        candidates_sql = " union ".join([candidates_sql, *scans])
    selects, tf_from, tf_cols, mw_cols, total, names = _scoring_parts(model, tf_inline=True)
    sql = f"""
        with cand as (select * from link_candidates l where l.unique_id <> $r_unique_id),
        g as (
            select l.unique_id as unique_id_l, r.unique_id as unique_id_r, {', '.join(selects + tf_cols)}
            from cand l cross join {probe} r{tf_from}),
        w as (select *, {', '.join(mw_cols)} from g)
        select *, {prior_w!r} + {total} as match_weight,
               pow(2, {prior_w!r} + {total}) / (1 + pow(2, {prior_w!r} + {total})) as match_probability
        from w order by match_weight desc, unique_id_l
    """
    return candidates_sql, sql, names


def _probe_scans(unkeyed: list[str], index: str) -> list[str]:
    """A scan of `index` for each rule without a block key, the probe's values bound as
    $r_<column>."""
    return [f"select record_no from {index} l "
            f"where {_PROBE_REF.sub(lambda m: f'($r_{m.group(1)})', rule)}" for rule in unkeyed]


def compile_probe_keys_sql(model: dict, probe: str) -> tuple[str | None, str | None]:
    """compile_scoring_sql's candidate search in two parts, for an index held in memory: a
    query giving the probe's blocking keys as one row (a column a rule, each a list of keys, null
    where the probe has no key for it), and the scan of the index (wh.linkage.records) for the
    rules that have no key (None when every rule has one; the probe's values bound as
    $r_<column>)."""
    keyed, unkeyed = probe_lookups(model, "r")
    scans = _probe_scans(unkeyed, "wh.linkage.records")
    keys = [f"case when {present} then {key} end" for key, present in keyed]
    keys_sql = f"select {', '.join(keys)} from {probe} r" if keys else None
    return keys_sql, (" union ".join(scans) if scans else None)


def compile_batch_scoring_sql(model: dict, index: str, probes: str, pairs: str) -> tuple[str, str]:
    """Batch forms of compile_scoring_sql's queries, for many probes at once.

    The first finds every (probe_no, record_no) candidate pair of the probes in `probes` (their
    record_no numbers them) with the same blocking rules; the second scores the pairs in `pairs`
    (probe_no, record_no), with the candidates' records in memory.main.link_batch_candidates,
    by the same arithmetic, and keeps each probe's best $top."""
    prior_w = prior_weight(model)
    keyed, unkeyed = probe_lookups(model, "r")
    scans = [f"select r.record_no as probe_no, l.record_no from {index} l join {probes} r on {rule}"
             for rule in unkeyed]
    lookups = [f"select r.record_no as probe_no, unnest({key}) as key from {probes} r where {present}"
               for key, present in keyed]
    keys_sql = (" union all ".join(lookups) if lookups
                else "select null::bigint as probe_no, null::ubigint as key where false")
    candidates_sql = (f"select distinct k.probe_no, b.record_no from ({keys_sql}) k "
                      f"join wh.linkage.block_keys b on b.key = k.key")
    if scans:
        candidates_sql = " union ".join([candidates_sql, *scans])
    selects, tf_from, tf_cols, mw_cols, total, _ = _scoring_parts(model)
    sql = f"""
        with g as (
            select p.probe_no, l.unique_id as unique_id_l, r.unique_id as unique_id_r,
                   {', '.join(selects + tf_cols)}
            from {pairs} p
            join memory.main.link_batch_candidates l on l.record_no = p.record_no
            join {probes} r on r.record_no = p.probe_no{tf_from}
            where l.unique_id <> r.unique_id),
        w as (select *, {', '.join(mw_cols)} from g),
        s as (
            select *, {prior_w!r} + {total} as match_weight,
                   pow(2, {prior_w!r} + {total}) / (1 + pow(2, {prior_w!r} + {total})) as match_probability
            from w)
        select * from s
        qualify row_number() over (partition by probe_no order by match_weight desc, unique_id_l) <= $top
        order by probe_no, match_weight desc, unique_id_l
    """
    return candidates_sql, sql


class Scorer:
    """Holds the model and a connection to the index for repeated scoring.

    With `preload` (the default) the first score() reads the index into memory: the records with
    their term frequencies and person ids (Arrow columns in record_no order) and the blocking
    keys (sorted arrays), 4.5-10 s and about 1 GB more at peak at 1,000,000 records; each later
    probe's candidates are then binary searches and a take by position instead of queries on
    disk. score_many() never reads it; a one-off score (`explain`, preload=False) reads only the
    candidates from disk. Both give the same results."""

    def __init__(self, settings: Settings, preload: bool = True) -> None:
        loaded = mdl.load_model(settings.home)
        if loaded is None:
            raise ConfigError("no trained linkage model: run `justice link` first")
        self.model, self.model_path = loaded
        self.con = open_warehouse(settings, read_only=True)
        require_links(self.con)
        self.threshold = float(self.model["justice"]["thresholds"]["match_weight"])
        self.prior_weight = prior_weight(self.model)
        self.candidates_sql, self.sql, self.names = compile_scoring_sql(
            self.model, "wh.linkage.records", "memory.main.link_probe")
        self.params = sorted(set(re.findall(r"\$(r_[a-z0-9_]+)", self.candidates_sql)))
        if not table_exists(self.con, "linkage", "block_keys"):
            raise ConfigError("the person index has no blocking keys: run `justice link` again")
        self.levels = {c["output_column_name"]: c["comparison_levels"] for c in self.model["comparisons"]}
        self.batch_candidates_sql, self.batch_sql = compile_batch_scoring_sql(
            self.model, "wh.linkage.records", "memory.main.link_batch_probes",
            "memory.main.link_batch_pairs")
        self.con.execute("create or replace table memory.main.link_probe as "
                         "select * from wh.linkage.records limit 0").fetchall()
        # Term frequencies (a few tens of thousands of names) as dicts: the probe's are bound
        # as parameters and the candidates' carried as columns, so scoring joins no table.
        self.tf_params = sorted(set(re.findall(r"\$tfr_([a-z0-9_]+)", self.sql)))
        self.tf = {c: dict(self.con.execute(f"select {c}, tf_{c} from wh.linkage.tf_{c} "
                                            f"where {c} is not null").fetchall())
                   for c in self.tf_params}
        self.preload = preload
        self.index: pa.Table | None = None
        self.keys_sql = self.scans_sql = None
        # Queries here touch a handful of rows: one thread avoids scheduling overhead.
        self.con.execute("set threads = 1").fetchall()

    def _load_index(self) -> None:
        """Read the index into memory (score() does on its first call when `preload`)."""
        self.con.execute("reset threads").fetchall()  # a scan of the whole index: every thread
        try:
            self.con.execute("set enable_progress_bar = false").fetchall()  # no bar on stdout
            index = self.con.sql(
                "select r.* exclude (fingerprint), pl.person_id as _person_id from wh.linkage.records r "
                "left join wh.linkage.person_links pl on pl.unique_id = r.unique_id "
                "order by r.record_no").to_arrow_table()
            record_nos = index.column("record_no").to_numpy()
            # The blocking keys too (sorted by key, as blocking.py writes them), so a probe's
            # candidates are two binary searches a key instead of a query over the table.
            bk = self.con.sql("select key, record_no from wh.linkage.block_keys").to_arrow_table()
            bk_keys, bk_records = bk.column("key").to_numpy(), bk.column("record_no").to_numpy()
            del bk
            if len(bk_keys) > 1 and not (bk_keys[1:] >= bk_keys[:-1]).all():
                order = np.argsort(bk_keys, kind="stable")
                bk_keys, bk_records = bk_keys[order], bk_records[order]
        finally:
            self.con.execute("set threads = 1").fetchall()
        self.keys_sql, self.scans_sql = compile_probe_keys_sql(self.model, "memory.main.link_probe")
        self.record_nos, self.bk_keys, self.bk_records = record_nos, bk_keys, bk_records
        self.index = self._with_tf(index).combine_chunks()

    def _with_tf(self, table: pa.Table) -> pa.Table:
        """`table` (index records) with each term-frequency column's value, tf_<column>."""
        for c in self.tf_params:
            tf = self.tf[c]
            table = table.append_column(f"tf_{c}", pa.array([tf.get(v) for v in table.column(c).to_pylist()],
                                                              pa.float64()))
        return table

    def _candidate_numbers(self, params: dict) -> list[int]:
        """The record numbers of the probe in memory.main.link_probe's candidates, sorted."""
        if self.index is None:
            return sorted({r[0] for r in self.con.execute(self.candidates_sql, params).fetchall()})
        found = []
        if self.keys_sql is not None:
            keys = np.array([k for ks in self.con.execute(self.keys_sql).fetchall()[0] if ks is not None
                             for k in ks], dtype=np.uint64)
            lo = np.searchsorted(self.bk_keys, keys, side="left")
            hi = np.searchsorted(self.bk_keys, keys, side="right")
            found = [self.bk_records[a:b] for a, b in zip(lo, hi) if b > a]
        if self.scans_sql is not None:
            scan_params = {k: v for k, v in params.items() if f"${k}" in self.scans_sql}
            found.append(np.array([r[0] for r in self.con.execute(self.scans_sql, scan_params).fetchall()],
                                  dtype=np.int64))
        if not found:
            return []
        return np.unique(np.concatenate(found)).tolist()

    def _candidates(self, record_nos: list[int]) -> pa.Table:
        """The records numbered `record_nos` (sorted), with their term frequencies and, when
        preloaded, their person ids (_person_id)."""
        if self.index is not None:
            pos = np.searchsorted(self.record_nos, np.asarray(record_nos, dtype=self.record_nos.dtype))
            if (pos >= len(self.record_nos)).any() or (self.record_nos[pos] != record_nos).any():
                raise ConfigError("the person index changed while the scorer held it: open a new Scorer")
            return self.index.take(pa.array(pos))
        literal = ", ".join(str(int(i)) for i in record_nos)
        # Literal record numbers: DuckDB looks them up in the record_no index.
        table = self.con.sql("select * exclude (fingerprint) from wh.linkage.records "
                             f"where record_no in ({literal}) order by record_no").to_arrow_table()
        return self._with_tf(table)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_probe(self, record: dict) -> None:
        raw = pa.table({"system": pa.array(["new"]), "record_id": pa.array(["probe"]),
                        **{k: pa.array([record[k]], pa.string()) for k in RAW_FIELDS if k != "dob"},
                        "dob": pa.array([dt.date.fromisoformat(record["dob"]) if record["dob"] else None], pa.date32()),
                        "same_as": pa.array([None], pa.string())})
        self.con.register("link_probe_raw", raw)
        try:
            standardise_raw(self.con, "link_probe_raw", "memory.main.link_probe",
                            [record["forenames"]] if record["forenames"] else [],
                            [record["surname"]] if record["surname"] else [])
        finally:
            self.con.unregister("link_probe_raw")

    def score(self, record: dict | str, top: int = 5) -> ScoreResult:
        """Score `record` (raw fields, or an indexed record's ``system:record_id``) against the
        index; the `top` best candidates, strongest first, each with its explanation."""
        if self.preload and self.index is None:
            self._load_index()
        if isinstance(record, str):
            cur = self.con.execute("select * exclude (fingerprint) from wh.linkage.records where unique_id = ?",
                                   [record])
            rows = cur.fetchall()
            if not rows:
                raise ConfigError(f"no record {record!r} in linkage.records (ids are system:record_id)")
            shown = dict(zip([d[0] for d in cur.description], rows[0]))
            self.con.execute("create or replace table memory.main.link_probe as "
                             "select * from wh.linkage.records where unique_id = ?", [record]).fetchall()
        else:
            shown = _clean_record(record)
            self._load_probe(shown)
        cur = self.con.execute("select * from memory.main.link_probe")
        probe = dict(zip([d[0] for d in cur.description], cur.fetchall()[0]))
        params = {name: probe[name[2:]] for name in self.params}
        ids = self._candidate_numbers(params)
        rows, others = [], {}
        if ids:
            cands = self._candidates(ids)
            binds = {"r_unique_id": probe["unique_id"]}
            for c in self.tf_params:
                binds[f"tfr_{c}"] = None if probe[c] is None else self.tf[c].get(probe[c])
            self.con.register("link_candidates", cands)
            try:
                cur = self.con.execute(self.sql + f" limit {int(top)}", binds)
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, row)) for row in cur.fetchall()]
            finally:
                self.con.unregister("link_candidates")
            if rows:
                at = {u: i for i, u in enumerate(cands.column("unique_id").to_pylist())}
                wanted = cands.take(pa.array([at[r["unique_id_l"]] for r in rows], pa.int64()))
                others = {rec["unique_id"]: rec for rec in wanted.to_pylist()}
        candidates = [self._candidate(r, others[r["unique_id_l"]], probe) for r in rows]
        if self.index is not None:
            for c in candidates:
                c.person_id = others[c.unique_id]["_person_id"]
        elif candidates:
            literal = ", ".join("'" + c.unique_id.replace("'", "''") + "'" for c in candidates)
            persons = dict(self.con.execute(  # literal ids: looked up in the unique_id index
                f"select unique_id, person_id from wh.linkage.person_links where unique_id in ({literal})").fetchall())
            for c in candidates:
                c.person_id = persons.get(c.unique_id)
        return ScoreResult(shown, self.prior_weight, self.threshold, candidates)

    def score_many(self, records: list[dict], top: int | None = 5,
                   exclude_systems: tuple[str, ...] | list[str] = (),
                   explain: bool = True) -> list[ScoreResult]:
        """Score many records (raw fields) in a few set queries: one ScoreResult per record, in
        order, each equal to ``score(record, top)`` (the same candidates, weights and
        explanations), except that candidates from `exclude_systems` are left out before the
        best are chosen. ``top=None`` keeps every candidate; ``explain=False`` skips the steps."""
        shown = [_clean_record(r) for r in records]
        if not shown:
            return []
        excluded = tuple(exclude_systems)
        # Batch queries scan the index and block keys: they want all threads, unlike score().
        self.con.execute("reset threads").fetchall()
        try:
            self._load_probes(shown)
            cur = self.con.execute("select * from memory.main.link_batch_probes")
            cols = [d[0] for d in cur.description]
            probes = {row[cols.index("record_no")]: dict(zip(cols, row)) for row in cur.fetchall()}
            position = {f"new:probe{i:09d}": i for i in range(len(shown))}
            self.con.execute("create or replace table memory.main.link_batch_pairs as "
                             f"{self.batch_candidates_sql}").fetchall()
            not_excluded = ""
            if excluded:
                literal = ", ".join("'" + x.replace("'", "''") + "'" for x in excluded)
                not_excluded = f" and system not in ({literal})"
            self.con.execute(
                "create or replace table memory.main.link_batch_candidates as "
                "select * from wh.linkage.records where record_no in "
                f"(select record_no from memory.main.link_batch_pairs){not_excluded}").fetchall()
            cur = self.con.execute(self.batch_sql, {"top": int(top) if top is not None else 2**62})
            names = [d[0] for d in cur.description]
            scored = [dict(zip(names, row)) for row in cur.fetchall()]
            cur = self.con.execute(
                "select c.*, pl.person_id as _person_id from memory.main.link_batch_candidates c "
                "left join wh.linkage.person_links pl on pl.unique_id = c.unique_id")
            cols = [d[0] for d in cur.description]
            others = {rec["unique_id"]: rec for rec in (dict(zip(cols, row)) for row in cur.fetchall())}
        finally:
            self.con.execute("set threads = 1").fetchall()
        results = [ScoreResult(record, self.prior_weight, self.threshold, []) for record in shown]
        for r in scored:
            probe = probes[r["probe_no"]]
            rec = others[r["unique_id_l"]]
            if explain:
                candidate = self._candidate(r, rec, probe)
            else:
                candidate = Candidate(r["unique_id_l"], None, float(r["match_weight"]),
                                      float(r["match_probability"]))
            candidate.person_id = rec["_person_id"]
            results[position[probe["unique_id"]]].candidates.append(candidate)
        return results

    def _load_probes(self, records: list[dict]) -> None:
        """Standardise `records` into memory.main.link_batch_probes as score() does one."""
        def column(k: str) -> pa.Array:
            return pa.array([r[k] for r in records], pa.string())
        raw = pa.table({"system": pa.array(["new"] * len(records)),
                        "record_id": pa.array([f"probe{i:09d}" for i in range(len(records))]),
                        **{k: column(k) for k in RAW_FIELDS if k != "dob"},
                        "dob": pa.array([dt.date.fromisoformat(r["dob"]) if r["dob"] else None
                                         for r in records], pa.date32()),
                        "same_as": pa.array([None] * len(records), pa.string())})
        self.con.register("link_batch_raw", raw)
        try:
            standardise_raw(self.con, "link_batch_raw", "memory.main.link_batch_probes",
                            sorted({r["forenames"] for r in records if r["forenames"]}),
                            sorted({r["surname"] for r in records if r["surname"]}))
        finally:
            self.con.unregister("link_batch_raw")

    def _candidate(self, r: dict, rec: dict, probe: dict) -> Candidate:
        steps = []
        for name, levels in self.levels.items():
            gamma = int(r[f"gamma_{name}"])
            weight = float(r[f"mw_{name}"]) + float(r[f"mw_tf_adj_{name}"])
            steps.append(Step(name, _label_for_gamma(levels, gamma), weight,
                              _value(rec, name), _value(probe, name)))
        return Candidate(r["unique_id_l"], None, float(r["match_weight"]), float(r["match_probability"]), steps)


def _label_for_gamma(levels: list[dict], gamma: int) -> str:
    """Splink numbers levels from the top: the null level is -1, the rest count down to 0."""
    if gamma == -1:
        return next((lv["label_for_charts"] for lv in levels if lv.get("is_null_level")), "missing")
    non_null = [lv for lv in levels if not lv.get("is_null_level")]
    idx = len(non_null) - 1 - gamma
    return non_null[idx]["label_for_charts"] if 0 <= idx < len(non_null) else f"level {gamma}"


_SHOWN = {"pnc": "pnc", "cro": "cro", "dob": "dob"}


def _value(rec: dict, name: str) -> str:
    """The record's value for comparison `name`, for display."""
    value = rec.get(_SHOWN.get(name, name))
    return "" if value is None else str(value)


def explain(settings: Settings, record: dict | str, top: int = 5) -> ScoreResult:
    """One-off `Scorer(settings, preload=False).score(record, top)`."""
    with Scorer(settings, preload=False) as scorer:
        return scorer.score(record, top)
