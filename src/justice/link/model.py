"""The Splink model: settings from ``model.yaml``, training, and versioned model files.

A trained model is a Splink settings JSON (comparisons with their m and u probabilities, the
prior, blocking rules) plus our own metadata under the key ``justice``: version number, when and
on how many records it was trained, the digest of the ``model.yaml`` it came from, and the
thresholds. Models are kept as ``HOME/linkage/models/model-vNNNN.json``; ``current.json`` names
the one in use. Training never overwrites an earlier version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import duckdb
import splink.comparison_level_library as cll
import yaml

from justice.engine import linkage_sql_by_engine
from justice.engine.base import Engine, LinkageSQL
from justice.engine.duckdb import DuckDBEngine
from justice.errors import ConfigError, TransformError
from justice.link.persons import constraints


def tf_columns(spec_or_model: dict) -> list[str]:
    """Columns with a term-frequency adjustment, from a spec (`tf:`) or a trained model."""
    cols: list[str] = []
    for comp in spec_or_model["comparisons"]:
        for lv in comp.get("levels", comp.get("comparison_levels", [])):
            col = lv.get("tf") or lv.get("tf_adjustment_column")
            if col and col not in cols:
                cols.append(col)
    return cols


def load_model_spec(path: Path | None = None) -> dict:
    """The model spec (``link/model.yaml`` unless `path`), checked for the keys the code reads."""
    if path is None:
        text = resources.files("justice.link").joinpath("model.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    spec = yaml.safe_load(text) or {}
    for key in ("comparisons", "blocking_rules", "training", "thresholds"):
        if key not in spec:
            raise ConfigError(f"link model spec: missing `{key}`")
    rules = spec["blocking_rules"]
    # A bare string is not a list of rules (iterating it would take each letter for a rule).
    if not isinstance(rules, list) or not rules or not all(isinstance(r, str) and r.strip() for r in rules):
        raise ConfigError("link model spec: `blocking_rules` must be a list of SQL conditions, at least one "
                          "(no pair would be a candidate without one)")
    t = spec["thresholds"]
    if "keep_weight" not in t:
        raise ConfigError("link model spec: thresholds need `keep_weight`")
    if "match_weight" in t:
        if not t.get("review_low", -math.inf) <= t["match_weight"] <= t.get("review_high", math.inf):
            raise ConfigError("link model spec: thresholds must satisfy review_low <= match_weight <= review_high")
    elif "link_probability" in t:
        if not 0.5 <= float(t["link_probability"]) < 1:
            raise ConfigError("link model spec: thresholds.link_probability must be at least 0.5 and below 1, "
                              f"not {t['link_probability']}")
        if float(t.get("review_band", 0)) < 0:
            raise ConfigError("link model spec: thresholds.review_band must not be negative")
    else:
        raise ConfigError("link model spec: thresholds need `link_probability` (the label-free rule) "
                          "or a fixed `match_weight`")
    em_max = spec["training"].get("em_max_pairs")
    if em_max is not None and (isinstance(em_max, bool) or not isinstance(em_max, int) or em_max < 1):
        raise ConfigError("link model spec: training.em_max_pairs must be a whole number of pairs, at least 1 "
                          f"(or left out: EM on every pair), not {em_max!r}")
    for rule in spec.get("hard_negatives") or []:
        if not isinstance(rule, dict) or not rule.get("name") or not rule.get("sql"):
            raise ConfigError("link model spec: each of `hard_negatives` needs a `name` and an `sql` condition")
        if not isinstance(rule.get("lifted_by_forename", False), bool):
            raise ConfigError(f"link model spec: hard negative {rule['name']!r}: lifted_by_forename must be "
                              f"true or false, not {rule['lifted_by_forename']!r}")
    for comp in spec["comparisons"]:
        labels = [lv.get("label") for lv in comp["levels"]]
        for lv in comp["levels"]:
            kinds = [k for k in (*LIBRARY_LEVELS, "sql") if k in lv]
            if len(kinds) != 1:
                raise ConfigError(f"link model spec: comparison {comp['name']!r}, level {lv.get('label')!r}: "
                                  f"give one of {', '.join((*LIBRARY_LEVELS, 'sql'))}, not {kinds or 'none'}")
        if not comp["levels"] or comp["levels"][-1].get("sql") != "ELSE":
            raise ConfigError(f"link model spec: comparison {comp['name']!r} must end with an ELSE level")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"link model spec: comparison {comp['name']!r} repeats a level label")
    return spec


def spec_digest(spec: dict) -> str:
    """A digest of what the trained model depends on (the clerical sample's plan is not part of it:
    drawing a different sample needs no new model)."""
    model_part = {k: v for k, v in spec.items() if k != "clerical_sample"}
    return hashlib.sha256(json.dumps(model_part, sort_keys=True).encode()).hexdigest()[:12]


def weight_for_probability(probability: float) -> float:
    """The match weight (log2 of the posterior odds) at which a pair's match probability is
    `probability`."""
    return math.log2(probability / (1 - probability))


def label_free_thresholds(spec: dict) -> tuple[dict, dict]:
    """The thresholds a newly trained model starts with, and how they were chosen, using no
    labels: a pair links when the model's own posterior match probability reaches the spec's
    `link_probability` (or at a fixed `match_weight`, if the spec states one). The clerical
    review band is `review_band` either side of the threshold."""
    t = spec["thresholds"]
    keep = float(t["keep_weight"])
    if "match_weight" in t:
        w = float(t["match_weight"])
        chosen = {"match_weight": w, "review_low": float(t.get("review_low", w)),
                  "review_high": float(t.get("review_high", w)), "keep_weight": keep}
        return chosen, {"method": "fixed in the model spec", "match_weight": w}
    q = float(t["link_probability"])
    w = weight_for_probability(q)
    band = float(t.get("review_band", 0.0))
    chosen = {"match_weight": w, "review_low": w - band, "review_high": w + band, "keep_weight": keep}
    return chosen, {"method": "model posterior", "link_probability": q, "match_weight": w,
                    "note": "a pair links when the trained model's own match probability is at least "
                            f"{q}; no labels used"}


# The levels a spec may take from Splink's comparison-level library, and how each is made.
LIBRARY_LEVELS = {
    "missing": lambda lv: cll.NullLevel(lv["missing"]),
    "exact": lambda lv: cll.ExactMatchLevel(lv["exact"]),
    "jaro_winkler": lambda lv: cll.JaroWinklerLevel(lv["jaro_winkler"], float(lv["at"])),
    "levenshtein": lambda lv: cll.LevenshteinLevel(lv["levenshtein"], int(lv["at"])),
    "columns_reversed": lambda lv: cll.ColumnsReversedLevel(*lv["columns_reversed"], symmetrical=True),
    "array_intersect": lambda lv: cll.ArrayIntersectLevel(lv["array_intersect"], int(lv.get("at", 1))),
    "date_difference": lambda lv: cll.AbsoluteDateDifferenceLevel(
        lv["date_difference"], input_is_string=False, threshold=int(lv["days"]), metric="day"),
}


def _level_sql(lv: dict, linkage_sql: LinkageSQL) -> str:
    """One spec level's condition in `linkage_sql`'s dialect: Splink's library writes its own
    levels for the dialect; a `sql:` level (DuckDB's dialect) is translated by the engine."""
    kind = next((k for k in LIBRARY_LEVELS if k in lv), None)
    if kind is None:
        return linkage_sql.translate(lv["sql"])
    try:
        level = LIBRARY_LEVELS[kind](lv)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"link model spec: level {lv.get('label')!r} ({kind}): {exc}") from exc
    return level.get_comparison_level(linkage_sql.splink_dialect).as_dict()["sql_condition"]


def dialect_sql(spec: dict, linkage_sql: LinkageSQL) -> dict:
    """Every level's condition and every blocking rule of `spec` in `linkage_sql`'s dialect."""
    return {"comparisons": [[_level_sql(lv, linkage_sql) for lv in comp["levels"]]
                            for comp in spec["comparisons"]],
            "blocking_rules": [linkage_sql.translate(r) for r in spec["blocking_rules"]]}


def splink_settings(spec: dict, linkage_sql: LinkageSQL | None = None) -> dict:
    """The Splink settings dictionary for `spec` (untrained), in `linkage_sql`'s dialect
    (DuckDB's by default)."""
    linkage_sql = linkage_sql or LinkageSQL()
    sql = dialect_sql(spec, linkage_sql)
    comparisons = []
    for comp, conditions in zip(spec["comparisons"], sql["comparisons"]):
        levels = []
        for lv, condition in zip(comp["levels"], conditions):
            level = {"sql_condition": condition, "label_for_charts": lv["label"]}
            if lv.get("is_null") or "missing" in lv:
                level["is_null_level"] = True
            if lv.get("tf"):
                level["tf_adjustment_column"] = lv["tf"]
                level["tf_adjustment_weight"] = float(lv.get("tf_weight", 1.0))
            levels.append(level)
        comparisons.append({"output_column_name": comp["name"], "comparison_levels": levels,
                            "comparison_description": comp["name"]})
    return {
        "link_type": spec.get("link_type", "dedupe_only"),
        "unique_id_column_name": "unique_id",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": r, "sql_dialect": linkage_sql.splink_dialect} for r in sql["blocking_rules"]],
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": True,
        "max_iterations": int(spec["training"].get("max_iterations", 25)),
        "em_convergence": float(spec["training"].get("em_convergence", 0.0001)),
    }


def quiet_splink() -> None:
    """Splink logs every SQL step at INFO and untrained levels as warnings; the CLI shows its own
    progress, and the report lists untrained levels."""
    logging.getLogger("splink").setLevel(logging.ERROR)


def make_linker(engine: Engine, con: duckdb.DuckDBPyConnection, table: str, settings: dict):
    """A Splink linker on `engine` over `table` (in linkage's DuckDB connection `con`), registered
    on the engine's Splink API first, Splink 5 style."""
    from splink import Linker

    quiet_splink()
    db_api = engine.splink_api(con)
    # Splink looks tables up by bare name, so a schema-qualified table gets a name of its own.
    name = "link_input_" + "".join(c if c.isalnum() else "_" for c in table)
    records = engine.splink_input(db_api, con, name, f"select * from {table}")
    linker = Linker(records, settings, log_level=None)
    return linker, db_api


def compute_tf_tables(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
    """`linkage.tf_<col>`: each value's share of non-null values, from the records in `table`."""
    for col in columns:
        con.execute(f"""
            create or replace table linkage.tf_{col} as
            select {col}, count(*)::double / sum(count(*)) over () as tf_{col}
            from {table} where {col} is not null group by {col}
        """)


def register_tf_tables(engine: Engine, con: duckdb.DuckDBPyConnection, linker, db_api,
                       columns: list[str], schema: str = "wh.linkage") -> None:
    """Register `schema`.tf_<col> as the linker's term-frequency lookups."""
    for col in columns:
        tf = engine.splink_input(db_api, con, f"tf_{col}_input", f"select * from {schema}.tf_{col}",
                                 table_name=f"__tf_{col}_{id(linker)}")
        linker.table_management.register_term_frequency_lookup(tf, col)


def train(con: duckdb.DuckDBPyConnection, spec: dict, table: str = "linkage.records",
          progress: Callable[[str], None] = lambda _: None) -> dict:
    """Train a model on the records in `table`: prior from deterministic rules, u by random
    sampling, m by expectation maximisation (then, if `m_from_identifier` is enabled, the m of the
    comparisons it names counted on the pairs sharing a valid identifier). Returns the trained
    settings (with metadata)."""
    n = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    if n < 2:
        raise TransformError(f"linkage: {n} records in {table}; training needs at least two")
    # Training runs on DuckDB over the served records on every engine: the seeded u sample and
    # refine_u's random pairs are drawn alike, so every engine trains the same model.
    engine = DuckDBEngine(settings=None)  # its Splink API needs only `con`
    tr = spec["training"]
    settings = splink_settings(spec)
    counts = None
    if tr.get("u_without_matches", False):
        # Every level of every comparison counted once on random record pairs: their plain shares
        # are EM's starting u (Splink's own random sample would only be thrown away), and the same
        # counts, weighted by the trained model, are the final u (refine_u).
        progress("comparing random pairs for u")
        counts = random_pair_levels(con, table, settings["comparisons"],
                                    pairs=int(tr.get("u_refine_pairs", tr["u_max_pairs"])), seed=int(tr["u_seed"]))
        _set_u(settings["comparisons"], counts, [1.0] * len(counts))
    linker, db_api = make_linker(engine, con, table, settings)
    register_tf_tables(engine, con, linker, db_api, tf_columns(spec),
                       table.rsplit(".", 1)[0] if "." in table else "main")
    progress("estimating the prior from deterministic rules")
    linker.training.estimate_probability_two_random_records_match(
        tr["deterministic_rules"], recall=float(tr["deterministic_recall"]))
    if counts is None:
        progress("estimating u by random sampling")
        # On every thread count the same u: Splink 5 draws the sample by a hash of each record's
        # unique id and the seed (not a sampler fed rows in whatever order the threads deliver
        # them), and a level's u is a count of pairs (whole numbers, which add up the same in any
        # order) over their total. A full re-run therefore cannot flip a pair at the threshold.
        linker.training.estimate_u_using_random_sampling(max_pairs=float(tr["u_max_pairs"]),
                                                         seed=int(tr["u_seed"]))
    for rule in tr["em_blocking_rules"]:
        progress(f"estimating m by EM, blocked on {rule}")
        linker.training.estimate_parameters_using_expectation_maximisation(
            em_sample_rule(con, table, rule, tr.get("em_max_pairs")))
    model = linker.misc.save_model_to_json()
    if (tr.get("m_from_identifier") or {}).get("enabled", False):
        progress("m from the pairs that share a valid identifier")
        m_from_identifier(con, table, model, tr["m_from_identifier"]["rule"],
                          tr["m_from_identifier"]["comparisons"])
    if counts is not None:
        # The counts are by level position in the settings; the trained model must have the same
        # levels in the same order for them to mean the same thing.
        if _level_labels(model["comparisons"]) != _level_labels(settings["comparisons"]):
            raise TransformError("linkage: the trained model's comparison levels are not the spec's, "
                                 "so the random pairs' level counts cannot be applied to it")
        progress("re-estimating u without the matches among random pairs")
        refine_u(model, counts)
    thresholds, choice = label_free_thresholds(spec)
    model["justice"] = {
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "trained_on_records": int(n),
        "spec_digest": spec_digest(spec),
        "version_note": spec.get("version_note", ""),
        # The model's conditions in every engine's dialect, made from the spec's level
        # definitions when it was trained (splink_part picks one).
        "sql": {name: dialect_sql(spec, sql) for name, sql in linkage_sql_by_engine().items()},
        "thresholds": thresholds,
        "threshold_choice": choice,
        # Every clustering rule and pass (persons.constraints), so the report's threshold sweep
        # clusters as the run does.
        "constraints": constraints(spec),
    }
    return model


EM_SAMPLE_BUCKETS = 1_000_000


def em_sample_rule(con: duckdb.DuckDBPyConnection, table: str, rule: str, max_pairs: int | None) -> str:
    """`rule` as EM blocks on it, or, when it makes more than `max_pairs` pairs of `table`'s
    records, a seeded sample of its blocks making about `max_pairs`: the rule and a condition on a
    hash of the left record's block key, which both records of a pair share. Whole blocks are
    kept, so the pairs EM sees are a random share of the rule's own. A rule that is not a
    conjunction of equalities (blocking.key_expressions) is used whole."""
    from justice.link.blocking import key_expressions, key_sql

    exprs = key_expressions(rule)
    if not max_pairs or exprs is None:
        return rule
    key, present = key_sql(0, exprs, "l")
    pairs = con.execute(f"select coalesce(sum(c * (c - 1) // 2), 0) from (select count(*) as c from {table} l "
                        f"where {present} group by {key})").fetchall()[0][0]
    if pairs <= max_pairs:
        return rule
    keep = max(1, int(EM_SAMPLE_BUCKETS * max_pairs / pairs))
    return f"{rule} and {key} % {EM_SAMPLE_BUCKETS} < {keep}"


def _level_case(comparison: dict) -> str:
    """SQL: the index of the level a pair falls in (-1 for the null level), in the model's order."""
    whens = []
    for i, level in enumerate(comparison["comparison_levels"]):
        cond = level["sql_condition"]
        if cond.strip().upper() == "ELSE":
            whens.append(f"else {i}")
            break
        whens.append(f"when {cond} then {-1 if level.get('is_null_level') else i}")
    return "case " + " ".join(whens) + " end"


def _pair_levels(con: duckdb.DuckDBPyConnection, table: str, comparisons: list[dict], into: str,
                 pairs_from: str) -> None:
    """Temp table `into`: the level (column gK, -1 for the null level) of each of `comparisons`
    for every record pair of `pairs_from`, a `with` clause that defines `p` as rows of `table`
    joined as `l` and `r`, with `{columns}` where the pair's columns (c_l, c_r) are selected."""
    cols = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    lhs = ", ".join(f"l.{c} as {c}_l" for c in cols)
    rhs = ", ".join(f"r.{c} as {c}_r" for c in cols)
    cases = ", ".join(f"{_level_case(c)} as g{k}" for k, c in enumerate(comparisons))
    con.execute(f"create or replace temp table {into} as "
                + pairs_from.replace("{columns}", f"{lhs}, {rhs}") + f" select {cases} from p")


def m_from_identifier(con: duckdb.DuckDBPyConnection, table: str, model: dict, rule: str,
                      comparisons: list[str]) -> dict[str, int]:
    """Set each named comparison's m (every level's share among matches) to its share among the
    record pairs that satisfy `rule` (two records holding the same valid PNC ID), taken as
    matches; changes `model` in place and returns the pairs counted per comparison.

    EM blocked on an identifier leaves that identifier out of its E-step, so a pair sharing a PNC
    ID whose names or dates of birth disagree is scored on those alone and mostly counted a
    non-match: EM's m for the disagreeing levels comes out a third to a sixth of the matches' own
    (the names' and the date of birth's "else"), and a true pair with one messy field falls far
    below the threshold. Two records of different people rarely share a valid PNC ID (a PNC
    keyed against the wrong person: on seed 31's high-mess world, 0.8% of such pairs, measured
    against the answer key), so these pairs are the matches with their mess as it comes, aliases
    and typos included. A count of zero is smoothed to half a pair, as u is. No labels are used."""
    comps = [c for c in model["comparisons"] if c["output_column_name"] in comparisons]
    missing = set(comparisons) - {c["output_column_name"] for c in comps}
    if missing:
        raise ConfigError(f"model.yaml training.m_from_identifier: no comparison {sorted(missing)}")
    _pair_levels(con, table, comps, "_m_pairs",
                 f"with p as (select {{columns}} from {table} l join {table} r "
                 f"on {rule} and l.unique_id < r.unique_id)")
    pairs: dict[str, int] = {}
    for k, c in enumerate(comps):
        tally = dict(con.execute(f"select g{k}, count(*) from _m_pairs where g{k} >= 0 group by all").fetchall())
        live = [i for i, lv in enumerate(c["comparison_levels"]) if not lv.get("is_null_level")]
        total = sum(tally.get(i, 0) + 0.5 for i in live)
        for i in live:
            c["comparison_levels"][i]["m_probability"] = (tally.get(i, 0) + 0.5) / total
        pairs[c["output_column_name"]] = sum(tally.values())
    con.execute("drop table if exists _m_pairs")
    return pairs


def random_pair_levels(con: duckdb.DuckDBPyConnection, table: str, comparisons: list[dict], pairs: int,
                       seed: int) -> list[tuple]:
    """Each combination of levels (one per comparison, -1 for the null level) among `pairs` random
    record pairs of `table`, with its count: rows (level, ..., count) in a fixed order.

    The pairs are drawn by a seeded hash of the draw's number, so every thread count and engine
    draws the same ones; the rows are ordered, so sums over them add up in the same order every
    run (floating-point sums in another order can differ in the last bit and flip a pair at the
    threshold)."""
    n = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    _pair_levels(con, table, comparisons, "_u_pairs",
                 f"with s as (select (hash(i, {seed}) % {n})::bigint + 1 as a, "
                 f"(hash(i, {seed}, 'r') % {n})::bigint + 1 as b from range({pairs}) t(i)), "
                 f"p as (select {{columns}} from s join {table} l on l.record_no = s.a "
                 f"join {table} r on r.record_no = s.b where s.a <> s.b)")
    try:
        return con.execute("select " + ", ".join(f"g{k}" for k in range(len(comparisons)))
                           + ", count(*) from _u_pairs group by all order by all").fetchall()
    finally:
        con.execute("drop table if exists _u_pairs")


def _level_labels(comparisons: list[dict]) -> list[tuple]:
    return [(c["output_column_name"], tuple((lv.get("label_for_charts"), bool(lv.get("is_null_level")))
                                            for lv in c["comparison_levels"])) for c in comparisons]


def _set_u(comparisons: list[dict], counts: list[tuple], weights: list[float]) -> None:
    """Set every live level's u to its share of the random pairs (row i of `counts` counted
    `weights[i]` times per pair). A count of zero is smoothed to half a pair, so no u falls below
    what the sample can resolve."""
    tallies: list[dict[int, float]] = [{} for _ in comparisons]
    for row, w in zip(counts, weights):
        *levels, k = row
        for t, g in zip(tallies, levels):
            if g >= 0:
                t[g] = t.get(g, 0.0) + k * w
    for c, t in zip(comparisons, tallies):
        live = [i for i, lv in enumerate(c["comparison_levels"]) if not lv.get("is_null_level")]
        total = sum(t.get(i, 0.0) + 0.5 for i in live)
        for i in live:
            c["comparison_levels"][i]["u_probability"] = (t.get(i, 0.0) + 0.5) / total


def refine_u(model: dict, counts: list[tuple], rounds: int = 3) -> None:
    """Re-estimate each level's u (its share among non-matching pairs) on random record pairs
    (`counts`, from random_pair_levels), counting each pair by the model's own probability that
    it is *not* a match; changes `model` in place.

    Random pairs taken as non-matches (Splink's u, and EM's starting u here) count the matches
    among them too. In a register of tens of thousands of records about 1 random pair in 6,000 is
    one person, about as often as two records of different people share a date of birth, and far
    more often than they share a PNC ID: u then measures the matches, and an agreeing identifier
    is worth 8 bits too little. Weighting each pair by 1 - P(match) under the trained m (an
    E-step over the random pairs, repeated as u changes) leaves the non-matches' own agreement
    rates. At a million records the correction is small, as matches are a far smaller share of
    random pairs. No labels are used."""
    comps = model["comparisons"]
    prior = float(model["probability_two_random_records_match"])
    prior_bits = math.log2(prior / (1 - prior))
    for _ in range(rounds):
        not_match = []
        for row in counts:
            bits = prior_bits
            for c, g in zip(comps, row[:-1]):
                lv = c["comparison_levels"][g] if g >= 0 else {}
                if lv.get("m_probability") and lv.get("u_probability"):
                    bits += math.log2(lv["m_probability"] / lv["u_probability"])
            not_match.append(1.0 / (1.0 + 2.0 ** min(bits, 60)))
        _set_u(comps, counts, not_match)


def models_dir(home: Path) -> Path:
    return Path(home) / "linkage" / "models"


def save_model(home: Path, model: dict) -> Path:
    """Write `model` as the next version and make it current; returns its path."""
    folder = models_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    versions = sorted(int(p.stem.split("-v")[1]) for p in folder.glob("model-v*.json"))
    version = (versions[-1] + 1) if versions else 1
    model["justice"]["version"] = version
    path = folder / f"model-v{version:04d}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(model, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    current = folder / "current.json"
    tmp = folder / "current.json.tmp"
    tmp.write_text(json.dumps({"model": path.name}), encoding="utf-8")
    os.replace(tmp, current)
    return path


def load_model(home: Path, version: int | None = None) -> tuple[dict, Path] | None:
    """The current model (or `version`) and its path; None when none has been trained."""
    folder = models_dir(home)
    if version is not None:
        path = folder / f"model-v{version:04d}.json"
        if not path.exists():
            raise ConfigError(f"no linkage model version {version} in {folder}")
    else:
        current = folder / "current.json"
        if not current.exists():
            return None
        path = folder / json.loads(current.read_text(encoding="utf-8"))["model"]
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"linkage model {path} is unreadable: {exc}") from exc
    return model, path


def splink_part(model: dict, linkage_sql: LinkageSQL | None = None) -> dict:
    """The model without our metadata, as Splink reads it; with `linkage_sql`, its conditions
    and blocking rules in that engine's dialect (as the model recorded them when trained)."""
    part = {k: v for k, v in model.items() if k != "justice"}
    if linkage_sql is None:
        return part
    stored = model.get("justice", {}).get("sql", {}).get(linkage_sql.splink_dialect)
    if stored is None:
        raise ConfigError(f"linkage model version {model.get('justice', {}).get('version')} holds no "
                          f"{linkage_sql.splink_dialect} SQL: run `justice link --retrain`")
    part = json.loads(json.dumps(part))
    for comp, conditions in zip(part["comparisons"], stored["comparisons"]):
        for level, condition in zip(comp["comparison_levels"], conditions):
            level["sql_condition"] = condition
    part["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": r, "sql_dialect": linkage_sql.splink_dialect} for r in stored["blocking_rules"]]
    part["sql_dialect"] = linkage_sql.splink_dialect
    return part
