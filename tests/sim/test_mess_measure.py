"""Identity mess as real registers have it: person-level traits, the answer key, and each kind's
rate measured from the emitted records against its target."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from justice import identifiers
from justice.sim import mess
from justice.sim.mess_measure import measure, write


@pytest.fixture(scope="module")
def truth(small_truth):
    out, world = small_truth
    t = out / "truth"
    return {
        "out": out,
        "world": world,
        "records": pd.read_parquet(t / "records.parquet"),
        "record_mess": pd.read_parquet(t / "identity" / "record_mess.parquet"),
        "traits": pd.read_parquet(t / "identity" / "identity_traits.parquet"),
        "addresses": pd.read_parquet(t / "identity" / "addresses.parquet"),
        "persons": pd.read_parquet(t / "persons.parquet"),
    }


def _careers(truth) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The records and people of the careers: the people with person-level traits. The one-off
    summary defendants (sim/one_offs.py) have one record each and per-record mess only."""
    with_traits = set(truth["traits"]["person_id"])
    rec, persons = truth["records"], truth["persons"]
    assert set(persons["person_id"]) - with_traits == {p for p in persons["person_id"] if p.startswith("PS")}
    return rec[rec["person_id"].isin(with_traits)], persons[persons["person_id"].isin(with_traits)]


def test_record_mess_is_the_answer_key_one_row_per_kind(truth):
    rec, long = truth["records"], truth["record_mess"]
    assert list(long.columns) == ["system", "record_id", "person_id", "kind", "other_person_id"]
    expected = sum(len(m.split(",")) for m in rec["mess"] if m)
    assert len(long) == expected
    # Kinds that put someone else's identity on a record name that person, never the owner.
    other = long[long["other_person_id"].notna()]
    assert set(other["kind"]) <= {"borrowed_identity", "pnc_wrong_person", "cro_wrong_person",
                                  "prison_number_reused"}
    assert len(other) and (other["other_person_id"] != other["person_id"]).all()
    kinds = set(long["kind"])
    for kind in ("name_variant", "surname_partial", "forename_middle_swap", "middle_missing",
                 "initials_only", "sex_wrong", "surname_change", "false_dob", "alias",
                 "borrowed_identity", "pnc_digit_typo", "no_fixed_abode", "postcode_typo",
                 "address_moved", "alias_untied"):
        assert kind in kinds, kind


def test_wrong_pncs_are_other_peoples_and_digit_typos_mostly_break_the_check(truth, small_truth):
    out, _ = small_truth
    long, persons = truth["record_mess"], truth["persons"]
    pnc_of = dict(zip(persons["person_id"], persons["pnc_id"], strict=True))
    wrong = long[long["kind"] == "pnc_wrong_person"]
    assert len(wrong)
    assert all(pnc_of[o] is not None for o in wrong["other_person_id"])
    # Digit typos: a single-digit change is always caught by the mod-23 check letter, unless
    # the letter was re-keyed to fit (identity.CHECK_REFIT_SHARE of them) or the typo hit the
    # century digits the letter does not cover (2 of the 11 digits).
    from justice.sim.legacy.identity import CHECK_REFIT_SHARE

    typo_ids = set(long.loc[(long["kind"] == "pnc_digit_typo") & (long["system"] == "magistrates"),
                            "record_id"])
    seen = {}
    for path in (out / "legacy" / "magistrates").rglob("*.csv"):
        with open(path, encoding="cp1252", newline="") as f:
            for row in csv.DictReader(f):
                if row["Defendant ID"] in typo_ids and row["PNC ID"]:
                    seen[row["Defendant ID"]] = row["PNC ID"]
    assert seen
    valid = [identifiers.is_valid_pnc(v) for v in seen.values()]
    expected = CHECK_REFIT_SHARE + (1 - CHECK_REFIT_SHARE) * 2 / 11
    assert not all(valid)
    assert np.mean(valid) < expected + 3 * np.sqrt(expected * (1 - expected) / len(valid))


def test_surname_changes_come_from_a_date_and_mostly_for_women(truth):
    """Records labelled with a surname change belong to people whose traits hold a change."""
    long, traits = truth["record_mess"], truth["traits"]
    changed = traits[traits["new_surname"].notna()]
    assert len(changed)
    women = truth["persons"].set_index("person_id").loc[changed["person_id"], "sex"]
    assert (women == "F").mean() > 0.7  # mostly women
    # (A prison alias row may be a surname variant of its own: not a change from a date.)
    alias_rows = set(long.loc[long["kind"] == "alias", "record_id"])
    labelled = long[(long["kind"] == "surname_change") & ~long["record_id"].isin(alias_rows)]
    assert len(labelled)
    assert set(labelled["person_id"]) <= set(changed["person_id"])


def test_false_dob_goes_to_one_system_only(truth):
    long, traits = truth["record_mess"], truth["traits"]
    false = long[long["kind"] == "false_dob"]
    assert len(false)
    system_of = traits.set_index("person_id")["false_dob_system"]
    assert (false["system"].to_numpy() == system_of.loc[false["person_id"]].to_numpy()).all()


def test_mess_is_correlated_within_a_person(truth):
    """People with chaotic lives are messy in all their records: the chaotic fifth of people
    has well over the error rate of the calmest fifth, in every system."""
    (rec, _), traits = _careers(truth), truth["traits"]
    chaos = traits.set_index("person_id")["chaos"]
    rec = rec.assign(chaos=chaos.loc[rec["person_id"]].to_numpy(),
                     errors=rec["mess"].map(lambda m: len([k for k in m.split(",") if k
                                                           and k != "address_moved"])))
    low, high = rec["chaos"].quantile([0.2, 0.8])
    calm = rec.loc[rec["chaos"] <= low, "errors"].mean()
    wild = rec.loc[rec["chaos"] >= high, "errors"].mean()
    assert wild > 1.8 * calm
    assert abs(np.average(chaos.loc[rec["person_id"]])) == pytest.approx(1.0, abs=0.1)


def test_addresses_hold_a_history_and_records_hold_the_address_of_their_day(truth):
    addr = truth["addresses"]
    per_person = addr.groupby("person_id").size()
    assert (per_person > 1).mean() > 0.3
    first = addr[addr["from_date"].isna()].set_index("person_id")["postcode"]
    persons = _careers(truth)[1].set_index("person_id")
    assert (first.loc[persons.index] == persons["postcode"]).all()


def test_twins_are_the_published_share(truth):
    persons = truth["persons"]
    twins = persons["twin_of"].notna() | persons["person_id"].isin(persons["twin_of"])
    assert abs(twins.mean() - 0.032) < 3 * np.sqrt(0.032 * 0.968 / len(persons)) + 0.003


def test_name_variants_are_not_nicknames():
    table, nick = mess.name_variant_table(), mess.nickname_lookup()
    assert {"mohammed", "muhammad", "mohammad"} <= set(table)
    for name, others in table.items():
        for o in others:
            assert o.lower() not in nick.get(name, ()) and name not in nick.get(o.lower(), ())


def test_each_kind_measured_from_the_emitted_records_is_near_its_target(linked_home, tmp_path):
    """The measured rate of every kind, read from the ingested extracts, is within tolerance of
    mess_levels.yaml's target; and the figures land in calibration.json beside the others."""
    figures = measure(linked_home.home)
    kinds = {f.kind for f in figures}
    assert {"dob_first_jan", "dob_day_month_swap", "sex_wrong", "pnc_digit_typo",
            "pnc_wrong_person", "cro_digit_typo", "prison_number_reused", "no_fixed_abode",
            "name_variant_table", "surname_partial", "mac_form", "middle_missing",
            "alias_person", "twins"} <= kinds
    bad = [(f.kind, round(f.measured, 4), f.target, round(f.tolerance, 4))
           for f in figures if not f.ok]
    assert not bad
    shutil.copytree(linked_home.home / "truth", tmp_path / "truth")
    write(tmp_path, figures)
    rows = json.loads((tmp_path / "truth" / "calibration.json").read_text())
    mess_rows = [r for r in rows if r.get("group") == "mess"]
    assert len(mess_rows) == len(figures) and len(rows) > len(mess_rows)
    write(tmp_path, figures)  # writing again replaces, never duplicates
    again = json.loads((tmp_path / "truth" / "calibration.json").read_text())
    assert len(again) == len(rows)
