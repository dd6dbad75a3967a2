"""Measure the identity mess of an ingested world from its emitted records, beside the targets.

The simulator checking itself: each system's person-bearing records are read as the platform
sees them (the raw identity columns of `justice.link` `sources.yaml`, over the warehouse that
`justice ingest` built from `legacy/`), compared with `truth/` (persons, identity traits, the
answer key), and each kind's measured rate is written beside its target from
`reference/mess_levels.yaml` into `truth/calibration.json` (rows with `"group": "mess"`,
replacing earlier ones).

Each measure is a share among the records (or people) the kind can apply to, seen in the
emitted values: a date of birth that reads 1 January where the truth does not, a PNC one digit
away from the person's own, and so on. Records given under another identity (an alias or a
borrowed identity) are left out of the name and date measures, as their names are someone
else's. Run: `python -m justice.sim.mess_measure HOME` after `justice ingest`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from justice.errors import ConfigError
from justice.sim import mess
from justice.sim.legacy.identity import NFA_FORMS

# A measured rate passes when within this share of its target, or within Z standard errors of it
# when the eligible records are few. Records are not independent draws: a person's mess is
# correlated across their records (people with chaotic lives are messy in all of them), so the
# standard error of a share of records is the larger of the binomial one and the person-clustered
# one (the linearised variance of a ratio over clusters, at the target rate).
RELATIVE_TOLERANCE = 0.25
Z = 3.0


@dataclass(frozen=True)
class MessFigure:
    """One kind of mess: its measured rate among `eligible` records and its target."""

    kind: str
    measured: float
    target: float
    eligible: int
    among: str
    clustered_se: float = 0.0  # the person-clustered standard error (0: people, not records)

    @property
    def tolerance(self) -> float:
        """Allowed distance from the target: relative, or sampling noise when that is larger."""
        se = math.sqrt(max(self.target * (1 - self.target), 1e-9) / max(self.eligible, 1))
        return max(RELATIVE_TOLERANCE * self.target, Z * max(se, self.clustered_se))

    @property
    def ok(self) -> bool:
        """Measured within tolerance of the target."""
        return abs(self.measured - self.target) <= self.tolerance

    def row(self) -> dict:
        """The calibration.json row."""
        return {"group": "mess", "figure": f"mess_{self.kind}", "simulated": round(self.measured, 5),
                "target": round(self.target, 5), "tolerance": round(self.tolerance, 5),
                "ok": bool(self.ok), "eligible": int(self.eligible), "among": self.among,
                "source": "reference/mess_levels.yaml"}


def emitted_records(home: Path) -> pd.DataFrame:
    """Every person-bearing record as the platform reads it from the ingested warehouse."""
    from justice.link.standardise import load_sources, raw_records_sql

    path = Path(home) / "warehouse.duckdb"
    if not path.exists():
        raise ConfigError(f"no warehouse at {path}: run `justice ingest` first")
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as wh (read_only)")
        con.execute("use wh")
        return con.execute(raw_records_sql(load_sources())).fetch_df()
    finally:
        con.close()


# Kinds drawn after the name variant that overwrite the forename it wrote
# (legacy/identity.messy_identity's order).
FORENAME_REWRITES = frozenset({"nickname", "name_swap", "forename_middle_swap", "initials_only",
                               "name_typo"})


def _upper(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.strip().str.upper()


def _mac_key(s: str) -> str:
    """A surname with spaces and apostrophes dropped and a leading MAC written MC."""
    s = s.replace(" ", "").replace("'", "")
    return "MC" + s[3:] if s.startswith("MAC") else s


def _within_one_edit(a: str, b: str) -> bool:
    """True when a and b are equal or one insertion, deletion or substitution apart."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _one_digit_apart(a: str, b: str) -> bool:
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    core = [i for i in diff if a[i].isdigit() or b[i].isdigit()]
    if diff == [len(a) - 1]:
        return False  # the check letter alone: pnc_bad_check, not a digit typo
    if len(diff) == 1 or (len(diff) == 2 and len(core) == 2 and diff[1] == diff[0] + 1):
        return True
    # A digit typo with the check letter re-keyed to fit: two differences, one the last letter.
    return len(diff) == 2 and diff[1] == len(a) - 1 and a[diff[0]].isdigit()


def measure(home: Path, level: str | None = None) -> list[MessFigure]:
    """Measure each kind's rate in the emitted records of the world at `home`."""
    home = Path(home)
    truth = home / "truth"
    params = json.loads((truth / "params.json").read_text())
    rates = mess.load_mess_levels()[level or params.get("mess", "default")]
    if not (truth / "identity" / "identity_traits.parquet").exists():
        raise ConfigError(f"{truth}/identity/identity_traits.parquet is missing: the world was "
                          "simulated before identity traits existed; run `justice simulate` again")
    rec = emitted_records(home)
    key = pd.read_parquet(truth / "records.parquet")
    persons = pd.read_parquet(truth / "persons.parquet")
    traits = pd.read_parquet(truth / "identity" / "identity_traits.parquet")
    df = rec.merge(key, on=["system", "record_id"], how="inner").merge(
        persons.add_prefix("t_"), left_on="person_id", right_on="t_person_id", how="left")
    df = df.merge(traits.add_prefix("x_"), left_on="person_id", right_on="x_person_id",
                  how="left")
    labels = df["mess"].fillna("").str.split(",")
    deceit = labels.map(lambda k: bool({"alias", "borrowed_identity", "false_dob"} & set(k)))
    own = df[~deceit].copy()
    out: list[MessFigure] = []

    def add(kind: str, hit: pd.Series, eligible: pd.Series, target: float, among: str,
            records: bool = True) -> None:
        """A share of `eligible` rows; of records (rows of `df`, clustered by person) unless
        `records` is false (rows are people)."""
        n = int(eligible.sum())
        if n:
            hits = (hit & eligible)[eligible]
            se = clustered_se(hits, df["person_id"].loc[hits.index], target) if records else 0.0
            out.append(MessFigure(kind, float(hits.sum()) / n, target, n, among, se))

    # ---- dates of birth ---------------------------------------------------------------------
    dob, true_dob = pd.to_datetime(own["dob"]), pd.to_datetime(own["t_dob"])
    present = dob.notna() & true_dob.notna()
    add("dob_missing", dob.isna(), true_dob.notna(), rates["dob_missing"],
        "records of people with a date of birth")
    jan1 = (dob.dt.month == 1) & (dob.dt.day == 1) & (dob.dt.year == true_dob.dt.year)
    add("dob_first_jan", jan1, present & ~((true_dob.dt.month == 1) & (true_dob.dt.day == 1)),
        rates["dob_first_jan"], "records with a date of birth, true one not 1 January")
    swap_ok = (true_dob.dt.day <= 12) & (true_dob.dt.day != true_dob.dt.month)
    swapped = (dob.dt.day == true_dob.dt.month) & (dob.dt.month == true_dob.dt.day) & (
        dob.dt.year == true_dob.dt.year)
    add("dob_day_month_swap", swapped, present & swap_ok, rates["dob_day_month_swap"],
        "records with a date of birth whose day is 12 or less and not the month")

    # ---- sex and names ----------------------------------------------------------------------
    sex = own["sex"].astype("string")
    add("sex_wrong", sex != own["t_sex"], sex.isin(["M", "F"]).fillna(False), rates["sex_wrong"],
        "records with a sex")
    names = _upper(own["forenames"]).str.split(r"\s+", n=1, expand=True).reindex(
        columns=[0, 1])
    first, middle = names[0].fillna(""), names[1].fillna("")
    true_first, true_mid = _upper(own["t_forename"]), _upper(own["t_middle_name"])
    add("initials_only", (first.str.len() == 1) & (first == true_first.str[:1]),
        true_first.str.len() > 1, rates["initials_only"], "records of people with a forename")
    # The providers' sheets have no middle-name column at all.
    add("middle_missing", (middle == "") & (first != ""),
        (true_mid != "") & (own["system"] != "interventions"), rates["middle_missing"],
        "records of people with a middle name, in systems with a field for it")
    table = mess.name_variant_table()
    in_table = true_first.str.lower().isin(table)
    variant = pd.Series([f.lower() in {v.lower() for v in table.get(t.lower(), ())}
                         for f, t in zip(first, true_first, strict=True)], index=own.index)
    # Forenames get 60% of the name-variant draws (identity.messy_identity). A spelling drawn
    # first and then overwritten by a later kind (a nickname, the name put in the surname's
    # place, initials, a typo) cannot be seen in the record, so those records are not counted.
    rewritten = own["mess"].fillna("").str.split(",").map(
        lambda k: bool(FORENAME_REWRITES & set(k)))
    add("name_variant_table", variant, in_table & ~rewritten, 0.6 * rates["name_variant_table"],
        "records of people whose forename is in the variant table and no later kind rewrote it "
        "(forename checked)")
    sur, true_sur = _upper(own["surname"]), _upper(own["t_surname"])
    compound = true_sur.str.contains(r"[- ]", regex=True)
    parts = true_sur.str.replace("-", " ").str.split(" ")
    # A part recorded alone or the parts run together, also when a later kind re-keyed one letter
    # of it or wrote its Mc as Mac (those records are still recorded in part).
    def _in_part(s: str, p: list[str], t: str) -> bool:
        if s == t:
            return False
        key = _mac_key(s)
        return any(_within_one_edit(key, _mac_key(c)) for c in [*p, "".join(p)]) or s == " ".join(p)

    partial = pd.Series([_in_part(s, p, t) for s, p, t in zip(sur, parts, true_sur, strict=True)],
                        index=own.index)
    add("surname_partial", partial & (sur != true_sur), compound, rates["surname_partial"],
        "records of people with a double-barrelled or hyphenated surname")
    macish = true_sur.str.match(r"^(MAC|MC|O')")
    squash = sur.str.replace(r"[ ']", "", regex=True)
    mac = (sur != true_sur) & (
        (squash == true_sur.str.replace(r"[ ']", "", regex=True))
        | (squash.str.replace("^MAC", "MC", regex=True)
           == true_sur.str.replace("^MAC", "MC", regex=True)))
    add("mac_form", mac, macish, rates["mac_form"], "records of people with a Mc/Mac/O' surname")

    # ---- identifiers ------------------------------------------------------------------------
    all_pnc = dict(zip(persons["pnc_id"], persons["person_id"], strict=True))
    all_cro = dict(zip(persons["cro_number"], persons["person_id"], strict=True))
    for short, col, owners in (("pnc", "t_pnc_id", all_pnc), ("cro", "t_cro_number", all_cro)):
        got = df[short].astype("string").str.strip()
        has = got.notna() & (got != "") & df[col].notna()
        typo = pd.Series([bool(h) and _one_digit_apart(str(g), str(t)) for g, t, h in
                          zip(got, df[col], has, strict=True)], index=df.index)
        add(f"{short}_digit_typo", typo, has, rates[f"{short}_digit_typo"],
            f"records holding a {short.upper()}, of people who have one")
        wrong = pd.Series([bool(h) and owners.get(str(g)) not in (None, p) for g, p, h in
                           zip(got, df["person_id"], has, strict=True)], index=df.index)
        add(f"{short}_wrong_person", wrong, has, rates[f"{short}_wrong_person"],
            f"records holding a {short.upper()}, of people who have one")
    prison = df[df["system"] == "prison"]
    roots = prison[prison["same_as"].isna() & ~prison["mess"].fillna("").str.contains("alias")]
    for short, col in (("pnc", "t_pnc_id"), ("cro", "t_cro_number")):
        got = roots[short].astype("string")
        add(f"{short}_missing", got.isna() | (got == ""), roots[col].notna(),
            rates[f"{short}_missing"], "prison main records of people who have one")
    numbers = dict(zip(persons["prison_number"], persons["person_id"], strict=True))
    reused = pd.Series([numbers.get(str(n)) not in (None, p) for n, p in
                        zip(roots["prison_number"], roots["person_id"], strict=True)],
                       index=roots.index)
    add("prison_number_reused", reused, pd.Series(True, index=roots.index),
        rates["prison_number_reused"], "prison main records")

    # ---- addresses --------------------------------------------------------------------------
    courts = df[df["system"].isin(["magistrates", "crown"])]
    nfa_forms = {f.upper() for f in NFA_FORMS}
    add("no_fixed_abode", _upper(courts["postcode"]).isin(nfa_forms),
        courts["t_postcode"].notna(), rates["no_fixed_abode"], "court records")

    # ---- people: aliases, deception, duplicates, twins --------------------------------------
    prison_people = prison["person_id"].unique()
    with_alias = prison.loc[prison["mess"].fillna("").str.contains("alias"), "person_id"].unique()
    add("alias_person", pd.Series(np.isin(prison_people, with_alias)),
        pd.Series(True, index=range(len(prison_people))), 1 - math.exp(-rates["alias_count"]),
        "people with a prison record who have an alias row or a record under an alias", records=False)
    dob_all = pd.to_datetime(df["dob"])
    t_all = persons.set_index("person_id")
    borrowed = df["x_borrows_identity_of"].notna()
    src = df["x_borrows_identity_of"].where(borrowed)
    src_sur = _upper(src.map(t_all["surname"]))
    src_dob = pd.to_datetime(src.map(t_all["dob"]))
    shows = borrowed & ((_upper(df["surname"]) == src_sur) | (dob_all == src_dob))
    add("borrowed_identity_records", shows, borrowed, 0.3,
        "records of people who borrow an identity (share given under it)")
    twin = persons["twin_of"].notna() | persons["person_id"].isin(persons["twin_of"])
    add("twins", twin, pd.Series(True, index=persons.index), 0.032,
        "people (truth): a twin whose twin is also in the world (ONS ~3.2%)", records=False)
    return out


def clustered_se(hits: pd.Series, people: pd.Series, target: float) -> float:
    """Standard error of the share of `hits` (one row a record) at the `target` rate, with the
    records clustered by person: sqrt(sum over people of (hits - target * records)^2) / records."""
    per = pd.DataFrame({"h": hits.astype(float).to_numpy(), "p": people.to_numpy()}).groupby("p")["h"]
    resid = per.sum() - target * per.count()
    return float(math.sqrt(float((resid ** 2).sum())) / len(hits)) if len(hits) else 0.0


def write(home: Path, figures: list[MessFigure]) -> Path:
    """Replace the mess rows of `truth/calibration.json` with `figures`."""
    path = Path(home) / "truth" / "calibration.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if r.get("group") != "mess"] + [f.row() for f in figures]
    path.write_text(json.dumps(rows, indent=2) + "\n")
    return path


def main(argv: list[str]) -> int:
    """Measure the world at argv[0], write calibration.json, print the table."""
    if len(argv) != 1:
        print("usage: python -m justice.sim.mess_measure HOME", file=sys.stderr)
        return 2
    try:
        figures = measure(Path(argv[0]))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write(Path(argv[0]), figures)
    print(f"{'kind':28} {'measured':>9} {'target':>9} {'±':>8} {'eligible':>9} ok")
    for f in figures:
        print(f"{f.kind:28} {f.measured:9.4f} {f.target:9.4f} {f.tolerance:8.4f} "
              f"{f.eligible:9d} {'yes' if f.ok else 'NO'}")
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
