"""Choosing the link threshold from a clerical sample: `justice link calibrate`.

A newly trained model links pairs whose own posterior match probability reaches the spec's
`link_probability` (model.label_free_thresholds). A Fellegi-Sunter model's posterior is only as
good as its independence assumption, so this module checks it against people's judgement:

1. **Draw** (`draw_sample`): at most `clerical_sample.size` scored pairs (linkage.pairs),
   stratified over the match weight in fixed-width bands, an equal number per band (all of a
   band's pairs when it has fewer), chosen within a band by a seeded hash of the pair's ids. The
   sample is `linkage.clerical_sample`, and `export_sample` writes it side by side for clerks.
2. **Label**: clerks decide each pair (`import_labels` reads their file), or in a simulated world
   the simulated clerk (`justice.link.evaluate.simulated_clerk`) reads the answer key for
   exactly those pairs, as a clerical team would look at them; nothing else reads it.
3. **Choose** (`calibrate`): each band's observed match share, made non-decreasing in the match
   weight by pooling adjacent bands that break the order (isotonic regression weighted by pairs
   labelled, `fit`). The threshold is the lower edge of the lowest band whose fitted share is at
   least `clerical_sample.min_band_share`: from there up, at least that share of the pairs the
   threshold links are the same person, as clerks judged them. The share is one a sample of
   2,000 can resolve: each band has about 100 labelled pairs, enough to tell 0.95 from 0.85 but
   not 0.99 from 0.98 (a rule at 0.99 made the threshold jump with single labels), nor to check a
   precision of 0.999 for every pair above an edge (one non-match among the top band's hundred
   labelled pairs stands for a hundred).
   Only pairs the threshold decides are sampled: pairs a hard-negative rule keeps apart, pairs
   with two different valid identifiers (`never_link`) and pairs with a clerical decision are
   settled whatever the threshold, so they are left out of the sampling frame.
4. **Record** (`calibrate`): a new model version, identical but for its thresholds and a
   `threshold_choice` saying how they were chosen (sample size, seed, bands, fit, estimated
   precision and recall), so the ledger shows every threshold and its evidence; then the index
   is re-clustered at the new threshold.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from justice.errors import ConfigError, TransformError
from justice.link import model as mdl
from justice.link.evaluate import CLERICAL_SAMPLE_LIMIT
from justice.link.store import shared_days_sql

SAMPLE = "linkage.clerical_sample"
LABELS = ("match", "non_match")


@dataclass
class Fit:
    """The observed match share per band of match weight, made non-decreasing."""

    band_low: list[float]
    labelled: list[int]
    matches: list[int]
    share: list[float]

    def share_at(self, band_low: float) -> float:
        """The fitted share of the band starting at `band_low`."""
        return self.share[self.band_low.index(band_low)]


def plan(spec: dict) -> dict:
    """The clerical sample's plan from the spec, with defaults."""
    p = dict(spec.get("clerical_sample") or {})
    plan_ = {"size": int(p.get("size", 2000)), "seed": int(p.get("seed", 1)),
             "band_width": float(p.get("band_width", 1.0)), "top_band_from": float(p.get("top_band_from", 16.0)),
             "keep_weight": float(spec["thresholds"]["keep_weight"]),
             "min_band_share": float(p.get("min_band_share", 0.95))}
    if not 0.5 <= plan_["min_band_share"] < 1:
        raise ConfigError(f"clerical_sample.min_band_share must be at least 0.5 and below 1, "
                          f"not {plan_['min_band_share']}")
    if not 1 <= plan_["size"] <= CLERICAL_SAMPLE_LIMIT:
        raise ConfigError(f"clerical_sample.size must be between 1 and {CLERICAL_SAMPLE_LIMIT:,} pairs, "
                          f"not {plan_['size']}")
    if plan_["band_width"] <= 0 or plan_["top_band_from"] <= plan_["keep_weight"]:
        raise ConfigError("clerical_sample: band_width must be positive and top_band_from above keep_weight")
    return plan_


def allocate(band_pairs: list[int], size: int) -> list[int]:
    """Pairs to draw from each band: equal shares, a band with fewer pairs than its share giving
    all it has and the remainder shared among the others."""
    alloc = [0] * len(band_pairs)
    left = size
    order = sorted(range(len(band_pairs)), key=lambda i: band_pairs[i])
    for k, i in enumerate(order):
        share = left // (len(order) - k)
        alloc[i] = min(band_pairs[i], share)
        left -= alloc[i]
    return alloc


def _band_sql(p: dict) -> str:
    top, lo, width = p["top_band_from"], p["keep_weight"], p["band_width"]
    return (f"case when match_weight >= {top} then {top} "
            f"else {lo} + floor((greatest(match_weight, {lo}) - {lo}) / {width}) * {width} end")


def parameters_digest(model: dict) -> str:
    """A digest of a model's scoring parameters: a calibrated copy scores as its original did, so
    a sample drawn on one serves the other."""
    return mdl.spec_digest({"model": mdl.splink_part(model)})


def _frame(con: duckdb.DuckDBPyConnection, spec: dict) -> None:
    """`_frame`: the scored pairs the threshold decides (not kept apart by a hard-negative rule or
    by two different valid identifiers, and with no clerical decision)."""
    from justice.link.persons import constraints, hard_negative_sql

    rules = constraints(spec)
    # Two values one keying error apart are one id mistyped, not two people (cluster.keying_error);
    # two values of one identifier with another the same on both records are one person's, one
    # of the two keyed against the wrong person (cluster.groups_conflict).
    def valid(r: dict) -> str:
        return f" and l.{r['valid']} and r.{r['valid']}" if r.get("valid") else ""

    def differ(r: dict) -> str:
        return f"coalesce(damerau_levenshtein(l.{r['column']}, r.{r['column']}) > 1{valid(r)}, false)"

    def agree(r: dict) -> str:
        return f"coalesce(l.{r['column']} = r.{r['column']}{valid(r)}, false)"

    never = rules["never_link"]
    conflicts = [f"({differ(r)} and not ({' or '.join(agree(o) for o in never if o is not r) or 'false'}))"
                 for r in never]
    con.execute(f"""
        create or replace temp table _frame as
        with settled as (
            select unique_id_l, unique_id_r from ({hard_negative_sql(rules["hard_negatives"])}) h
            union select unique_id_l, unique_id_r from linkage.clerical_decisions),
        scored as (
            select p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability
            from linkage.pairs p
            join linkage.records l on l.unique_id = p.unique_id_l
            join linkage.records r on r.unique_id = p.unique_id_r
            where not ({" or ".join(conflicts) or "false"}))
        select * from scored anti join settled using (unique_id_l, unique_id_r)
    """)


def draw_sample(con: duckdb.DuckDBPyConnection, spec: dict, model: dict) -> int:
    """Draw the stratified sample of scored pairs into linkage.clerical_sample (replacing any
    earlier one); returns the number of pairs drawn."""
    p = plan(spec)
    model_version = model["justice"]["version"]
    _frame(con, spec)
    bands = con.execute(f"""select {_band_sql(p)} as band, count(*) from _frame
                            group by band order by band""").fetchall()
    if not bands:
        raise TransformError("no scored pairs to sample: run `justice link` first")
    alloc = allocate([int(n) for _, n in bands], p["size"])
    con.execute("create or replace temp table _alloc (band double, band_pairs bigint, sampled bigint)")
    con.executemany("insert into _alloc values (?, ?, ?)", [[b, n, a] for (b, n), a in zip(bands, alloc)])
    con.execute(f"""
        create or replace table {SAMPLE} as
        with banded as (
            select unique_id_l, unique_id_r, match_weight, match_probability, {_band_sql(p)} as band,
                   row_number() over (partition by {_band_sql(p)}
                                      order by md5('{p["seed"]}:' || unique_id_l || '|' || unique_id_r)) as k
            from _frame)
        select b.unique_id_l, b.unique_id_r, b.match_weight, b.match_probability, b.band as band_low,
               case when b.band >= {p["top_band_from"]} then null else b.band + {p["band_width"]} end as band_high,
               a.band_pairs, a.sampled as band_sampled, {int(model_version)} as model_version,
               '{parameters_digest(model)}' as parameters,
               {p["seed"]} as seed, now()::timestamp as drawn_at,
               null::varchar as label, null::varchar as labelled_by
        from banded b join _alloc a on a.band = b.band
        where b.k <= a.sampled
        order by b.band, b.k
    """)
    return con.execute(f"select count(*) from {SAMPLE}").fetchall()[0][0]


SIDE_BY_SIDE = ("forename", "middle_names", "surname", "dob", "sex", "postcode", "pnc", "cro", "prison_number")


def export_sample(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Write the sample for clerks: each pair's two records side by side, the days of events
    the two systems' records share, and a `decision` column (match / non_match) to fill in.
    Returns the rows written."""
    cols = ", ".join(f"l.{c} as {c}_l, r.{c} as {c}_r" for c in SIDE_BY_SIDE)
    cur = con.execute(f"""
        select s.unique_id_l, s.unique_id_r, round(s.match_weight, 2) as match_weight, {cols},
               array_to_string({shared_days_sql(con)}, ' ') as shared_event_days, s.label as decision
        from {SAMPLE} s join linkage.records l on l.unique_id = s.unique_id_l
        join linkage.records r on r.unique_id = s.unique_id_r order by s.band_low, s.unique_id_l, s.unique_id_r
    """)
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerows(["" if v is None else v for v in row] for row in rows)
    return len(rows)


def import_labels(con: duckdb.DuckDBPyConnection, path: Path, clerk: str) -> int:
    """Read clerks' decisions (columns unique_id_l, unique_id_r, decision) into the sample; a
    blank decision is left unlabelled. Returns the pairs labelled."""
    if not Path(path).exists():
        raise ConfigError(f"no clerical labels file at {path}")
    sampled = {(a, b) for a, b in con.execute(f"select unique_id_l, unique_id_r from {SAMPLE}").fetchall()}
    labels = []
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"unique_id_l", "unique_id_r", "decision"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            decision = (row["decision"] or "").strip().lower().replace(" ", "_").replace("-", "_")
            if not decision:
                continue
            if decision not in LABELS:
                raise ConfigError(f"{path}, line {line}: decision {row['decision']!r} is not match or non_match")
            pair = (row["unique_id_l"], row["unique_id_r"])
            if pair not in sampled:
                raise ConfigError(f"{path}, line {line}: {pair[0]} and {pair[1]} are not a pair of the sample")
            labels.append([decision, clerk, *pair])
    con.executemany(f"update {SAMPLE} set label = ?, labelled_by = ? where unique_id_l = ? and unique_id_r = ?",
                    labels)
    return len(labels)


def fit(bands: list[dict]) -> Fit:
    """Isotonic (non-decreasing) match share over the labelled bands, by pooling adjacent
    violators, each band weighted by its labelled pairs."""
    bands = [b for b in bands if b["labelled"] > 0]
    if not bands or sum(b["matches"] for b in bands) == 0:
        raise TransformError("clerical sample: no labelled matches; the threshold cannot be chosen")
    blocks: list[list[float]] = []  # [matches, labelled, first band index, last band index]
    for i, b in enumerate(bands):
        blocks.append([b["matches"], b["labelled"], i, i])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            m, n, _, last = blocks.pop()
            blocks[-1][0] += m
            blocks[-1][1] += n
            blocks[-1][3] = last
    share = [0.0] * len(bands)
    for m, n, first, last in blocks:
        for i in range(int(first), int(last) + 1):
            share[i] = m / n
    return Fit([b["band_low"] for b in bands], [b["labelled"] for b in bands],
               [b["matches"] for b in bands], share)


def band_table(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per band of the sample: pairs scored, sampled, labelled, matches among them."""
    rows = con.execute(f"""
        select band_low, band_high, any_value(band_pairs), count(*), count(label),
               count(*) filter (where label = 'match')
        from {SAMPLE} group by band_low, band_high order by band_low""").fetchall()
    return [{"band_low": lo, "band_high": hi, "pairs": int(n), "sampled": int(s), "labelled": int(lab),
             "matches": int(m)} for lo, hi, n, s, lab, m in rows]


def estimate(con: duckdb.DuckDBPyConnection, threshold: float) -> dict:
    """Estimated precision and recall, at `threshold`, of the pairs the threshold decides (before
    clustering), from the sample alone: within a band each labelled pair stands for
    band pairs / labelled pairs of the band's pairs."""
    rows = con.execute(f"""
        select any_value(band_pairs)::double / count(label),
               count(*) filter (where label = 'match' and match_weight >= {threshold}),
               count(*) filter (where label is not null and match_weight >= {threshold}),
               count(*) filter (where label = 'match')
        from {SAMPLE} where label is not null group by band_low""").fetchall()
    tp = sum(scale * m_above for scale, m_above, _, _ in rows)
    pred = sum(scale * n_above for scale, _, n_above, _ in rows)
    true = sum(scale * m for scale, _, _, m in rows)
    return {"precision": tp / pred if pred else 1.0, "recall": tp / true if true else 1.0,
            "linked_pairs": round(pred), "matching_pairs": round(true)}


def calibrate(con: duckdb.DuckDBPyConnection, spec: dict, model: dict) -> dict:
    """A copy of `model` whose thresholds come from the labelled clerical sample (the lowest band
    whose fitted match share reaches `min_band_share`), with the evidence in `threshold_choice`."""
    t = spec["thresholds"]
    p = plan(spec)
    unlabelled = con.execute(f"select count(*) from {SAMPLE} where label is null").fetchall()[0][0]
    if unlabelled:
        raise TransformError(f"clerical sample: {unlabelled:,} pairs have no decision yet")
    bands = band_table(con)
    f = fit(bands)
    curve = []
    for b in bands:
        if b["labelled"] == 0:
            continue
        b["fitted_share"] = f.share_at(b["band_low"])
        curve.append({"threshold": b["band_low"], **estimate(con, b["band_low"]), "band_share": b["fitted_share"]})
    chosen = next((c for c in curve if c["band_share"] >= p["min_band_share"]), None)
    # No band is that pure: link only the top band, and say so.
    w = chosen["threshold"] if chosen else p["top_band_from"]
    band = float(t.get("review_band", 0.0))
    sample_info = con.execute(f"""select count(*), count(*) filter (where label = 'match'), any_value(seed),
                                         any_value(model_version), list(distinct labelled_by order by labelled_by)
                                  from {SAMPLE}""").fetchall()[0]
    new = copy.deepcopy(model)
    previous = dict(model["justice"]["thresholds"])
    new["justice"]["thresholds"] = {"match_weight": w, "review_low": w - band, "review_high": w + band,
                                    "keep_weight": float(t["keep_weight"])}
    new["justice"]["threshold_choice"] = {
        "method": "clerical sample",
        "min_band_share": p["min_band_share"],
        "match_weight": w,
        "target_reached": chosen is not None,
        "calibrated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "from_version": model["justice"]["version"],
        "previous_match_weight": previous.get("match_weight"),
        "model_posterior_at_threshold": 1 / (1 + 2 ** -w),
        "sample": {"pairs": int(sample_info[0]), "matches": int(sample_info[1]), "seed": int(sample_info[2]),
                   "drawn_on_version": int(sample_info[3]), "labelled_by": list(sample_info[4]),
                   "plan": p, "bands": bands},
        "estimated": estimate(con, w),
        "curve": curve,
        "note": (f"the lowest band of match weight whose match share in the clerical sample (made "
                 f"non-decreasing) is at least {p['min_band_share']}"),
    }
    return new


def save_calibrated(home: Path, model: dict) -> Path:
    """Save the calibrated copy as the next model version (the one it came from stays)."""
    return mdl.save_model(home, model)


@dataclass
class CalibrationResult:
    """What `justice link calibrate` did."""

    status: str  # "awaiting labels" or "calibrated"
    sample_pairs: int
    labelled: int
    sample_file: Path
    model_version: int | None = None
    choice: dict | None = None


def sample_file(home: Path) -> Path:
    """Where the sample is written for clerks."""
    return Path(home) / "linkage" / "clerical_sample.csv"


def _sample_fits(con: duckdb.DuckDBPyConnection, model: dict) -> bool:
    from justice.link.store import table_exists

    if not table_exists(con, "linkage", "clerical_sample"):
        return False
    digests = con.execute(f"select distinct parameters from {SAMPLE}").fetchall()
    return digests == [(parameters_digest(model),)]


def run_calibration(settings, *, labels: Path | None = None, clerk: str = "clerical team",
                    simulated_clerk: bool = False, redraw: bool = False,
                    progress=lambda _: None) -> CalibrationResult:
    """Draw the clerical sample if there is none for the current model, take labels (a clerks'
    file, or the simulated clerk in a simulated world), and once every pair is labelled choose
    the threshold, save it as a new model version and re-cluster the index at it."""
    from justice.link.run import link
    from justice.link.store import open_warehouse, require_links

    loaded = mdl.load_model(settings.home)
    if loaded is None:
        raise TransformError("no linkage model yet: run `justice link` first")
    model, _ = loaded
    spec = mdl.load_model_spec()
    if model["justice"].get("spec_digest") != mdl.spec_digest(spec):
        # The next `justice link` would retrain and drop a threshold calibrated on this model.
        raise TransformError(f"the model spec changed since model v{model['justice']['version']} was trained: "
                             "run `justice link` (it trains a new model), then calibrate")
    out = sample_file(settings.home)
    con = open_warehouse(settings)
    try:
        require_links(con)
        if redraw or not _sample_fits(con, model):
            progress("drawing the clerical sample")
            draw_sample(con, spec, model)
        if labels is not None:
            import_labels(con, labels, clerk)
        if simulated_clerk:
            from justice.link.evaluate import simulated_clerk as clerk_from_answer_key

            progress("the simulated clerk labels the sample from the answer key")
            clerk_from_answer_key(con, settings.truth_dir)
        export_sample(con, out)
        total, labelled = con.execute(f"select count(*), count(label) from {SAMPLE}").fetchall()[0]
        if labelled < total:
            return CalibrationResult("awaiting labels", int(total), int(labelled), out)
        progress("fitting the match rate to the match weight")
        calibrated = calibrate(con, spec, model)
    finally:
        con.close()
    path = save_calibrated(settings.home, calibrated)
    progress(f"re-clustering at match weight {calibrated['justice']['thresholds']['match_weight']:+.2f}")
    link(settings, progress=progress)
    return CalibrationResult("calibrated", int(total), int(labelled), out, calibrated["justice"]["version"],
                             calibrated["justice"]["threshold_choice"] | {"model_file": path.name})
