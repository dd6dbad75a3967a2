"""The linkage quality report: HOME/reports/linkage_quality.md, charts and a JSON of the figures.

Always: the latest run, how the link threshold was chosen, the model (version, prior, every
comparison level's m, u and weight), the match-weight distribution of scored pairs, the clerical
review queue, and the deterministic baseline (baseline.py) on the same records beside the model. When the simulator's
answer key is in HOME/truth (a demo or test world), also: pairwise precision, recall and F1 and
cluster measures, overall and per system pair; precision and recall against the match threshold
(re-clustering at each); and how well records with each kind of mess were linked; the baseline's precision, recall and F1
beside the model's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from justice.link import evaluate as ev
from justice.link import model as mdl
from justice.link.baseline import RULES, baseline
from justice.link.persons import cluster_labels, constraints
from justice.link.store import open_warehouse, require_links
from justice.settings import Settings

SWEEP = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0)


def pairwise_from_labels(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F1 of cluster labels `pred` against true labels `truth`."""
    def pairs(*arrays: np.ndarray) -> int:
        _, counts = np.unique(np.stack(arrays, axis=1), axis=0, return_counts=True)
        counts = counts.astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())
    tp, pp, tt = pairs(pred, truth), pairs(pred), pairs(truth)
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    return {"precision": p, "recall": r, "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r)}


def threshold_sweep(con, truth_dir: Path, rules: dict, thresholds=SWEEP) -> list[dict]:
    """Cluster at each threshold and score the clusters against truth."""
    truth = con.execute(f"""
        select r.unique_id, t.person_id from linkage.records r
        join read_parquet('{Path(truth_dir) / "records.parquet"}') t using (system, record_id)
        order by r.unique_id""").fetchall()
    truth_map = dict(truth)
    out = []
    for t in thresholds:
        c = cluster_labels(con, t, rules)
        keep = np.array([u in truth_map for u in c["unique_id"].tolist()])
        true = np.array([truth_map.get(u) for u in c["unique_id"][keep].tolist()], dtype=object)
        _, true_codes = np.unique(true.astype(str), return_inverse=True)
        out.append({"threshold": t, **pairwise_from_labels(c["labels"][keep], true_codes)})
    return out


BORROWED = "borrowed_identity"


def model_and_baseline(con, truth_dir: Path | None) -> dict:
    """The model's people and the deterministic baseline's on the same records: people, linked
    pairs and records linked to another; with an answer key, pairwise precision, recall and F1
    of both (records the answer key does not hold are left out of those)."""
    base = baseline(con)
    model_rows = con.execute("select unique_id, person_id from linkage.person_links order by unique_id").fetchall()
    model_ids = np.array([p for _, p in model_rows], dtype=object)
    if [u for u, _ in model_rows] != base.unique_id.tolist():
        raise ValueError("linkage.person_links and linkage.records hold different records: re-run `justice link`")
    _, model_labels = np.unique(model_ids.astype(str), return_inverse=True)

    def counts(labels: np.ndarray) -> dict:
        _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        sizes = sizes.astype(np.int64)
        return {"persons": len(sizes), "linked_pairs": int((sizes * (sizes - 1) // 2).sum()),
                "records_linked_to_another": int((sizes[inverse] > 1).sum())}

    out = {"records": len(model_ids), "model": counts(model_labels), "baseline": counts(base.labels),
           "baseline_rule_pairs": base.rule_links, "baseline_rules": {k: list(v) for k, v in RULES.items()}}
    if truth_dir is not None and (Path(truth_dir) / "records.parquet").exists():
        key = Path(truth_dir) / "records.parquet"
        has_mess = "mess" in {r[0] for r in con.execute(f"describe select * from read_parquet('{key}')").fetchall()}
        rows = con.execute(f"""
            select r.unique_id, t.person_id, {"coalesce(t.mess, '')" if has_mess else "''"}
            from linkage.records r join read_parquet('{key}') t using (system, record_id)""").fetchall()
        truth = {u: p for u, p, _ in rows}
        borrowed = {u for u, _, m in rows if BORROWED in m.split(",")}
        keep = np.array([u in truth for u in base.unique_id.tolist()], dtype=bool)
        true = np.array([str(truth[u]) for u in base.unique_id[keep].tolist()], dtype=object)
        _, true_codes = np.unique(true, return_inverse=True)
        out["model"].update(pairwise_from_labels(model_labels[keep], true_codes))
        out["baseline"].update(pairwise_from_labels(base.labels[keep], true_codes))
        # The same measures without records that carry another real person's name and date of
        # birth (borrowed identities): by every field a linker can read they are that other
        # person, and only fingerprints would place them (docs/linkage.md, "What the goals count").
        own = np.array([u not in borrowed for u in base.unique_id[keep].tolist()], dtype=bool)
        _, own_codes = np.unique(true[own], return_inverse=True)
        out["model_linkable"] = pairwise_from_labels(model_labels[keep][own], own_codes)
        out["baseline_linkable"] = pairwise_from_labels(base.labels[keep][own], own_codes)
        out["borrowed_identity_records"] = int((~own).sum())
        out["f1_gain"] = out["model"]["f1"] - out["baseline"]["f1"]
    return out


def labels_against_truth(con, truth_dir: Path, unique_id: np.ndarray, labels: np.ndarray) -> dict:
    """Pairwise precision, recall and F1 of cluster `labels` (one per record of `unique_id`)
    against the answer key, over every record and without borrowed-identity records (as
    `model_and_baseline`); records the answer key does not hold are left out."""
    key = Path(truth_dir) / "records.parquet"
    has_mess = "mess" in {r[0] for r in con.execute(f"describe select * from read_parquet('{key}')").fetchall()}
    rows = con.execute(f"""
        select r.unique_id, t.person_id, {"coalesce(t.mess, '')" if has_mess else "''"}
        from linkage.records r join read_parquet('{key}') t using (system, record_id)""").fetchall()
    truth = {u: str(p) for u, p, _ in rows}
    borrowed = {u for u, _, m in rows if BORROWED in m.split(",")}
    ids = np.asarray(unique_id, dtype=object)
    keep = np.array([u in truth for u in ids.tolist()], dtype=bool)
    true = np.array([truth[u] for u in ids[keep].tolist()], dtype=object)
    _, true_codes = np.unique(true, return_inverse=True)
    own = np.array([u not in borrowed for u in ids[keep].tolist()], dtype=bool)
    _, own_codes = np.unique(true[own], return_inverse=True)
    return {"all": pairwise_from_labels(labels[keep], true_codes),
            "linkable": pairwise_from_labels(labels[keep][own], own_codes)}


def threshold_lines(model: dict) -> list[str]:
    """How the model version's link threshold was chosen, for the report."""
    choice = model["justice"].get("threshold_choice") or {"method": "fixed in the model spec (before version 2 "
                                                                   "of the threshold rules)"}
    w = float(model["justice"]["thresholds"]["match_weight"])
    lines = ["## How the link threshold was chosen", "",
             (f"Match weight {w:+.2f} (the model's own match probability there: {1 / (1 + 2 ** -w):.4f}); "
             f"method: **{choice['method']}**.")]
    if choice["method"] == "model posterior":
        lines += ["", (f"No labels: a pair links when the trained model's posterior match probability is at "
                  f"least {choice['link_probability']}. `justice link calibrate` checks this against a "
                  "clerical sample.")]
    elif choice["method"] == "clerical sample":
        sample, est = choice["sample"], choice["estimated"]
        lines += ["", (f"A clerical sample of {sample['pairs']:,} scored pairs ({sample['matches']:,} matches), "
                       f"drawn with seed {sample['seed']} on model v{sample['drawn_on_version']} and labelled by "
                       f"{', '.join(sample['labelled_by'])}, stratified over match-weight bands. The threshold "
                       f"is the lower edge of the lowest band whose match share (made non-decreasing) is at "
                       f"least {choice['min_band_share']}"
                       + ("" if choice.get("target_reached", True) else " (no band reached it: the top band is used)")
                       + f". Previous threshold {choice['previous_match_weight']:+.2f} "
                       f"(model v{choice['from_version']})."),
                  "", (f"Estimated from the sample alone, for the pairs the threshold decides (before "
                       f"clustering): precision {est['precision']:.4f}, recall {est['recall']:.4f}."),
                  "", ("| band | pairs | sampled | matches | match share | fitted share | est. precision from here "
                      "| est. recall from here |"), "|---|---|---|---|---|---|---|---|"]
        curve = {c["threshold"]: c for c in choice.get("curve", [])}
        for b in sample["bands"]:
            band = (f"{b['band_low']:+.0f} to {b['band_high']:+.0f}" if b["band_high"] is not None
                    else f"{b['band_low']:+.0f} and above")
            share = b["matches"] / b["labelled"] if b["labelled"] else float("nan")
            c = curve.get(b["band_low"], {})
            lines.append(f"| {band} | {b['pairs']:,} | {b['sampled']:,} | {b['matches']:,} | {share:.3f} | "
                         f"{b.get('fitted_share', float('nan')):.3f} | {c.get('precision', float('nan')):.4f} | "
                         f"{c.get('recall', float('nan')):.4f} |")
    return lines + [""]


def baseline_lines(mb: dict) -> list[str]:
    """The model beside the deterministic baseline, for the report."""
    has_truth = "f1" in mb["model"]
    lines = ["## The model beside a deterministic baseline", "",
             ("The baseline links two records when they share an identifier (PNC ID, CRO number, prison "
              "number) or the same standardised forename, surname and date of birth, and closes those links "
              "transitively; same records, no model."), ""]
    head = "| | people | linked pairs | records linked to another |"
    rule = "|---|---|---|---|"
    if has_truth:
        head += " precision | recall | F1 |"
        rule += "---|---|---|"
    lines += [head, rule]
    for name in ("model", "baseline"):
        r = mb[name]
        row = f"| {name} | {r['persons']:,} | {r['linked_pairs']:,} | {r['records_linked_to_another']:,} |"
        if has_truth:
            row += f" {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} |"
        lines.append(row)
    if has_truth:
        lines += ["", f"F1 gain of the model over the baseline: {mb['f1_gain']:+.4f}."]
    lines += ["", "Pairs each baseline rule matches directly: "
              + "; ".join(f"{k} {v:,}" for k, v in mb["baseline_rule_pairs"].items()) + ".", ""]
    return lines


def mess_recall(con) -> list[dict]:
    """Per kind of mess: records with it, and the share in the cluster holding most of their
    person's records (so linked with the rest of the person)."""
    rows = con.execute("""
        with c as (select truth, pred, count(*) n from _eval group by all),
        maj as (select truth, arg_max(pred, n) as mpred from c group by truth),
        e as (select e.*, e.pred = maj.mpred as with_majority from _eval e join maj using (truth)),
        k as (select unnest(case when mess = '' then ['(clean)'] else string_split(mess, ',') end) as kind,
                     with_majority from e)
        select kind, count(*), avg(with_majority::int) from k group by kind order by 2 desc
    """).fetchall()
    return [{"mess": k, "records": int(n), "linked_with_their_person": float(share)} for k, n, share in rows]


def _charts(folder: Path, weights: np.ndarray, is_match: np.ndarray | None, sweep: list[dict],
            threshold: float) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.linspace(max(-20, float(weights.min(initial=0))), float(weights.max(initial=1)) + 1, 60)
    if is_match is not None:
        ax.hist(weights[is_match], bins=bins, alpha=0.7, label="true matches")
        ax.hist(weights[~is_match], bins=bins, alpha=0.7, label="non-matches")
        ax.legend()
    else:
        ax.hist(weights, bins=bins)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("match weight")
    ax.set_ylabel("scored pairs (log scale)")
    ax.set_title("Match weights of scored candidate pairs (dashed: link threshold)")
    fig.tight_layout()
    fig.savefig(folder / "linkage_match_weights.png", dpi=110)
    plt.close(fig)
    names.append("linkage_match_weights.png")
    if sweep:
        fig, ax = plt.subplots(figsize=(8, 4))
        xs = [s["threshold"] for s in sweep]
        for key in ("precision", "recall", "f1"):
            ax.plot(xs, [s[key] for s in sweep], marker="o", label=key)
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel("match weight threshold")
        ax.set_ylabel("pairwise, after clustering")
        ax.set_title("Precision and recall against the link threshold (dashed: chosen)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "linkage_threshold.png", dpi=110)
        plt.close(fig)
        names.append("linkage_threshold.png")
    return names


def write_report(settings: Settings) -> Path:
    """Write the report and return the Markdown file's path."""
    folder = settings.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    loaded = mdl.load_model(settings.home)
    con = open_warehouse(settings, read_only=True)
    try:
        require_links(con)
        model, model_path = loaded
        spec_thresholds = model["justice"]["thresholds"]
        threshold = float(spec_thresholds["match_weight"])
        cur = con.execute("select * from linkage.runs order by finished_at desc limit 1")
        run = dict(zip([d[0] for d in cur.description], cur.fetchall()[0]))
        review = con.execute("select count(*) from linkage.clerical_review").fetchall()[0][0]
        decisions = con.execute("select decision, count(*) from linkage.clerical_decisions group by 1").fetchall()
        truth_dir = settings.truth_dir
        has_truth = (truth_dir / "records.parquet").exists()
        figures: dict = {"run": {k: str(v) for k, v in run.items()}, "model_version": model["justice"]["version"],
                         "thresholds": spec_thresholds, "clerical_review_pending": review}
        figures["model_and_baseline"] = model_and_baseline(con, truth_dir if has_truth else None)
        figures["threshold_choice"] = model["justice"].get("threshold_choice")
        if has_truth:
            scored = con.execute(f"""
                select p.match_weight, a.person_id = b.person_id
                from linkage.pairs p
                join linkage.records ra on ra.unique_id = p.unique_id_l
                join linkage.records rb on rb.unique_id = p.unique_id_r
                join read_parquet('{truth_dir / "records.parquet"}') a on a.system = ra.system and a.record_id = ra.record_id
                join read_parquet('{truth_dir / "records.parquet"}') b on b.system = rb.system and b.record_id = rb.record_id
            """).fetchnumpy()
            weights = np.asarray(scored["match_weight"], dtype=float)
            is_match = np.asarray(scored[list(scored)[1]], dtype=bool)
            quality = ev.evaluate(con, truth_dir)
            figures["quality"] = quality
            figures["mess"] = mess_recall(con)
            sweep = threshold_sweep(con, truth_dir, model_constraints(model))
            figures["threshold_sweep"] = sweep
        else:
            weights = np.asarray(con.execute("select match_weight from linkage.pairs").fetchnumpy()["match_weight"],
                                 dtype=float)
            is_match, sweep = None, []
        charts = _charts(folder, weights, is_match, sweep, threshold)
    finally:
        con.close()
    (folder / "linkage_quality.json").write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
    lines = ["# Linkage quality", "",
             (f"Run `{run['run_id']}` ({run['mode']}), model v{model['justice']['version']} "
              f"(`{model_path.name}`, trained {model['justice']['trained_at']} on "
              f"{model['justice']['trained_on_records']:,} records)."), "",
             f"- records: {run['records']:,}; new or changed this run: {run['changed_records']:,}",
             f"- candidate pairs scored: {run['pairs_scored']:,}; links holding clusters: {run['links']:,}",
             f"- people (distinct person_id): {run['persons']:,}",
             f"- link threshold: match weight {threshold:+.1f}; clerical review band "
             f"{float(spec_thresholds['review_low']):+.1f} to {float(spec_thresholds['review_high']):+.1f}: "
             f"{review:,} pairs pending, decisions so far: "
             + (", ".join(f"{d} {n}" for d, n in decisions) or "none"),
             f"- seconds: {float(run['seconds']):.1f}", ""]
    lines += threshold_lines(model)
    lines += baseline_lines(figures["model_and_baseline"])
    if has_truth:
        q = figures["quality"]
        pw, cl = q["pairwise"], q["clusters"]
        lines += ["## Against the answer key (truth/records.parquet)", "",
                  "| measure | value |", "|---|---|",
                  f"| pairwise precision | {pw['precision']:.4f} |", f"| pairwise recall | {pw['recall']:.4f} |",
                  f"| pairwise F1 | {pw['f1']:.4f} |", f"| B-cubed F1 | {cl['bcubed_f1']:.4f} |",
                  f"| people whose records form exactly one cluster | {cl['people_exactly_right']:.4f} |",
                  f"| true pairs / predicted pairs | {pw['true_pairs']:,} / {pw['predicted_pairs']:,} |",
                  f"| answer-key records with no person_id | {q['truth_records_without_person_id']:,} |", "",
                  "### By system pair", "", "| systems | true pairs | precision | recall | F1 |", "|---|---|---|---|---|"]
        lines += [f"| {r['systems']} | {r['true_pairs']:,} | {r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} |"
                  for r in q["by_system_pair"]]
        lines += ["", "### Against the threshold (re-clustered at each)", "",
                  "| threshold | precision | recall | F1 |", "|---|---|---|---|"]
        lines += [f"| {s['threshold']:+.1f} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} |" for s in sweep]
        lines += ["", "### By kind of mess", "",
                  "Share of records with each kind of error that ended up with the rest of their person's records.", "",
                  "| mess | records | linked with their person |", "|---|---|---|"]
        lines += [f"| {m['mess']} | {m['records']:,} | {m['linked_with_their_person']:.4f} |" for m in figures["mess"]]
    lines += ["", "## Charts", ""] + [f"![{c}]({c})" for c in charts]
    lines += ["", "## Model parameters", "",
              (f"Prior: probability two random records match "
               f"{model['probability_two_random_records_match']:.3g} "
               f"(weight {math.log2(model['probability_two_random_records_match']):+.2f})."), "",
              "| comparison | level | m | u | weight |", "|---|---|---|---|---|"]
    for comp in model["comparisons"]:
        for lv in comp["comparison_levels"]:
            if lv.get("is_null_level"):
                lines.append(f"| {comp['output_column_name']} | {lv['label_for_charts']} | | | 0 (null) |")
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            w = math.log2(m / u) if m and u else float("nan")
            lines.append(f"| {comp['output_column_name']} | {lv['label_for_charts']} | {m:.3g} | {u:.3g} | {w:+.2f} |")
    neutral = model["justice"].get("neutral_levels") or []
    if neutral:
        lines += ["", "Levels training never observed (set to weight 0, or for an ELSE level m = 1e-4): "
                  + "; ".join(neutral) + "."]
    path = folder / "linkage_quality.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def model_constraints(model: dict) -> dict:
    """The clustering rules a trained model keeps (`persons.constraints` of its spec), or, for a
    model saved before it kept them, those of link/model.yaml."""
    return model["justice"].get("constraints") or constraints(mdl.load_model_spec())
