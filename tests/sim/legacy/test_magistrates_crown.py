"""The magistrates' (Libra CSV) and Crown Court (XHIBIT XML) extracts and their answer keys."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from justice.sim import mess
from justice.sim.legacy import crown, magistrates

RATES = mess.load_mess_levels()["default"]
MAGS_DATES = ("D.O.B", "Offence Date", "Charge Date", "First Hearing Date", "Next Hearing Date")
DMY = re.compile(r"^\d{2}/\d{2}/\d{4}$")
NS = {"x": crown.NAMESPACE}


def _emit(module, world, out: Path, seed: int = 3):
    out.mkdir(parents=True, exist_ok=True)
    return module.emit(world.tables, np.random.default_rng(seed), RATES, out, world.params)


@pytest.fixture(scope="module")
def mags(small_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("magistrates")
    key = _emit(magistrates, small_world, out)
    files = sorted(out.rglob("*.csv"))
    rows = []  # (file, line number, row dict, raw line)
    for f in files:
        data = f.read_bytes()
        text = data.decode("cp1252")  # strict: the file must be valid Windows-1252
        lines = text.split("\r\n")
        assert lines[-1] == "", f"{f} does not end with CRLF"
        assert "\n" not in text.replace("\r\n", ""), f"{f} has a bare LF"
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        assert header == magistrates.HEADER
        for i, row in enumerate(reader, start=2):
            assert len(row) == len(header), f"{f} line {i} has {len(row)} fields"
            rows.append((f, i, dict(zip(header, row, strict=True)), tuple(row)))
    return {"out": out, "key": key.to_pylist(), "files": files, "rows": rows}


@pytest.fixture(scope="module")
def crown_out(small_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("crown")
    key = _emit(crown, small_world, out)
    return {"out": out, "key": key.to_pylist(), "files": sorted(out.rglob("*.xml"))}


def _labels(key) -> dict[str, set[str]]:
    return {r["record_id"]: set(filter(None, r["mess"].split(","))) for r in key}


def _valid_dmy(s: str) -> bool:
    try:
        dt.datetime.strptime(s, "%d/%m/%Y")
    except ValueError:
        return False
    return bool(DMY.match(s))


# --------------------------------------------------------------------------------------------
# Magistrates
# --------------------------------------------------------------------------------------------


def test_mags_files_are_daily_in_monthly_folders(mags, small_world):
    assert len(mags["files"]) > 300
    p = small_world.params
    for f in mags["files"]:
        m = re.fullmatch(r"libra_(\d{8})\.csv", f.name)
        assert m, f.name
        day = dt.datetime.strptime(m.group(1), "%Y%m%d").date()
        assert f.parent.name == f"{day:%Y-%m}"
        assert p.start <= day <= p.end


def test_mags_dates_are_dmy_except_invalid_date_records(mags):
    labels = _labels(mags["key"])
    bad_ids = set()
    for _, _, row, _ in mags["rows"]:
        for col in MAGS_DATES:
            v = row[col]
            if v and not _valid_dmy(v):
                assert DMY.match(v), f"{col}={v!r} is not dd/mm/yyyy shaped"
                bad_ids.add(row["Defendant ID"])
    flagged = {r for r, k in labels.items() if "invalid_date" in k}
    assert bad_ids == flagged
    assert flagged, "expected some invalid dates at the default level"


def test_mags_names_are_upper_case(mags):
    # Letters a to z only: an encoding error turns an apostrophe (U+2019) into "â€™", whose
    # lower-case "â" is what the mangled bytes read as in Windows-1252, not a name in lower case.
    lower_ascii = re.compile("[a-z]")
    lower = [r["Defendant Surname"] for _, _, r, _ in mags["rows"]
             if lower_ascii.search(r["Defendant Surname"]) or lower_ascii.search(r["DEF_FORENAME"])]
    assert not lower


def test_mags_key_matches_files(mags, small_world):
    key_ids = [r["record_id"] for r in mags["key"]]
    assert len(key_ids) == len(set(key_ids))
    seen = {r["Defendant ID"] for _, _, r, _ in mags["rows"]}
    assert seen == set(key_ids)
    assert all(re.fullmatch(r"D\d{9}", i) for i in key_ids)
    persons = set(_people(small_world)["person_id"].tolist())
    assert {r["person_id"] for r in mags["key"]} <= persons
    assert {r["system"] for r in mags["key"]} == {"magistrates"}
    # Every one-off summary case is a record of its own person.
    one_off = {r["person_id"] for r in mags["key"] if r["person_id"].startswith("PS")}
    assert len(one_off) == len(small_world.tables["one_off_cases"]["case_id"])
    # One case (and so one case number) per defendant id.
    case_of = defaultdict(set)
    for _, _, r, _ in mags["rows"]:
        case_of[r["Defendant ID"]].add(r["Case No."])
    assert all(len(v) == 1 for v in case_of.values())


def test_mags_cases_are_resent_when_completed(mags):
    by_def = defaultdict(list)
    for f, _, r, _ in mags["rows"]:
        by_def[r["Defendant ID"]].append((f.name, r))
    updated = 0
    for rows in by_def.values():
        files = sorted({f for f, _ in rows})
        if len(files) > 1 and not rows[0][1]["Verdict"] and rows[-1][1]["Verdict"]:
            updated += 1
    assert updated > 100
    for f, _, r, _ in mags["rows"]:
        day = dt.datetime.strptime(f.stem.removeprefix("libra_"), "%Y%m%d")
        if not r["Verdict"] and r["Next Hearing Date"]:  # an open case is listed again, later
            assert dt.datetime.strptime(r["Next Hearing Date"], "%d/%m/%Y") > day
    assert any(r["Fine Amount"] for _, _, r, _ in mags["rows"])
    assert any(r["Custody Unit"] for _, _, r, _ in mags["rows"])


def test_mags_duplicates_and_late_corrections_are_labelled(mags):
    labels = _labels(mags["key"])
    per_file = defaultdict(Counter)
    for f, _, r, raw in mags["rows"]:
        per_file[f][raw] += 1
    dup_ids = {raw[3] for c in per_file.values() for raw, k in c.items() if k > 1}
    assert dup_ids == {r for r, k in labels.items() if "duplicate_row" in k}

    ident = defaultdict(list)
    for f, _, r, _ in mags["rows"]:
        ident[r["Defendant ID"]].append((f.name, r["Defendant Surname"], r["D.O.B"]))
    changed = set()
    for d, seq in ident.items():
        seq.sort()
        if seq[0][1:] != seq[-1][1:]:
            changed.add(d)
    late = {r for r, k in labels.items() if "late_correction" in k}
    # An invalid date can also make two versions differ; otherwise only corrections do.
    invalid = {r for r, k in labels.items() if "invalid_date" in k}
    assert changed - invalid <= late
    assert len(late & changed) >= 0.95 * len(late)


def test_mags_one_off_cases_are_written_after_the_careers_and_leave_them_as_they_were(mags, small_world, tmp_path):
    # The same extract with no one-off cases: every careers' file is the start of the file with
    # them (the careers' lines are the same bytes), and the one-off cases add days and lines.
    tables = dict(small_world.tables)
    tables["one_off_cases"] = {k: v[:0] for k, v in tables["one_off_cases"].items()}
    magistrates.emit(tables, np.random.default_rng(3), RATES, tmp_path, small_world.params)
    careers = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.csv")}
    both = {p.relative_to(mags["out"]): p.read_bytes() for p in mags["files"]}
    assert set(careers) < set(both)
    assert all(both[f].startswith(data) for f, data in careers.items())
    assert sum(len(b) for b in both.values()) > 1.5 * sum(len(b) for b in careers.values())
    # Their lines: a case number in the postal block, one offence, no police identifiers, and a
    # conviction in absence with no plea.
    key = {r["record_id"]: r["person_id"] for r in mags["key"]}
    c = small_world.tables["one_off_cases"]
    outcome = dict(zip(np.char.decode(c["person_id"]).tolist(), c["outcome"].tolist(), strict=True))
    absent = 0
    for _, _, r, _ in mags["rows"]:
        person = key[r["Defendant ID"]]
        if not person.startswith("PS"):
            assert int(r["Case No."][-7:]) < magistrates.POSTAL_SERIAL_FROM
            continue
        assert int(r["Case No."][-7:]) >= magistrates.POSTAL_SERIAL_FROM
        assert r["Off Seq"] == "1" and not r["PNC ID"] and not r["CRO No"]
        if r["Verdict"] and outcome[person] == "convicted_in_absence":
            assert r["Plea"] == "" and r["Verdict"] == "GUILTY" and r["Disposal"] and r["Fine Amount"]
            absent += 1
    assert absent > 1_000


def test_mags_pnc_only_for_recordable_cases(mags):
    from justice.sim import reference as ref

    off = ref.offences()
    recordable = dict(zip(off.code.tolist(), off.recordable.tolist(), strict=True))
    by_def = defaultdict(lambda: [False, False])
    for _, _, r, _ in mags["rows"]:
        by_def[r["Defendant ID"]][0] |= recordable[r["Offence Code"]]
        by_def[r["Defendant ID"]][1] |= bool(r["PNC ID"])
    assert not [d for d, (rec, pnc) in by_def.items() if pnc and not rec]


# --------------------------------------------------------------------------------------------
# Crown
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crown_docs(crown_out):
    schema = etree.XMLSchema(etree.parse(str(crown.XSD_PATH)))
    docs = []
    for f in crown_out["files"]:
        doc = etree.parse(str(f))
        assert schema.validate(doc), f"{f}: {schema.error_log.last_error}"
        docs.append((f, doc))
    return docs


def test_crown_every_file_validates(crown_docs, small_world):
    assert len(crown_docs) > 100
    p = small_world.params
    for f, doc in crown_docs:
        day = dt.datetime.strptime(f.stem.removeprefix("xhibit_"), "%Y%m%d").date()
        assert f.parent.name == f"{day:%Y-%m}"
        assert p.start <= day <= p.end
        assert doc.getroot().get("MessageDate") == day.isoformat()


def _messages(crown_docs):
    for f, doc in crown_docs:
        for m in doc.getroot().iterfind("x:CaseMessage", NS):
            yield f, m


def test_crown_key_matches_files(crown_out, crown_docs, small_world):
    key_ids = [r["record_id"] for r in crown_out["key"]]
    assert len(key_ids) == len(set(key_ids))
    seen = {d.text for _, m in _messages(crown_docs)
            for d in m.iterfind(".//x:DefendantID", NS)}
    assert seen == set(key_ids)
    assert {r["system"] for r in crown_out["key"]} == {"crown"}
    persons = set(small_world.tables["persons"]["person_id"].tolist())
    assert {r["person_id"] for r in crown_out["key"]} <= persons


def test_crown_invalid_dates_duplicates_and_case(crown_out, crown_docs):
    labels = _labels(crown_out["key"])
    bad, dups, surnames = set(), set(), []
    for _, doc in crown_docs:
        raw = Counter(etree.tostring(m) for m in doc.getroot().iterfind("x:CaseMessage", NS))
        for m in doc.getroot().iterfind("x:CaseMessage", NS):
            did = m.findtext(".//x:DefendantID", namespaces=NS)
            if raw[etree.tostring(m)] > 1:
                dups.add(did)
            for tag in ("DateOfBirth", "OffenceStartDate"):
                for e in m.iterfind(f".//x:{tag}", NS):
                    try:
                        dt.date.fromisoformat(e.text)
                    except ValueError:
                        bad.add(did)
            surnames.append(m.findtext(".//x:Surname", namespaces=NS))
    assert bad == {r for r, k in labels.items() if "invalid_date" in k}
    assert dups == {r for r, k in labels.items() if "duplicate_row" in k}
    mixed = sum(s != s.upper() for s in surnames)
    assert mixed > 0.9 * len(surnames)


def test_crown_links_to_magistrates_only_by_free_text(crown_docs):
    courts = Counter()
    for _, m in _messages(crown_docs):
        c = m.findtext(".//x:CommittingCourt", namespaces=NS)
        if c:
            courts[c] += 1
    assert len(courts) > 7  # the 7 magistrates' courts, spelled in several ways


# --------------------------------------------------------------------------------------------
# Both: rates and determinism
# --------------------------------------------------------------------------------------------


def _people(world) -> dict[str, np.ndarray]:
    """The careers' people and, after them, the one-off summary defendants (ids, forenames, dates
    of birth), sorted by person id as truth/persons.parquet is."""
    persons, one_off = world.tables["persons"], world.tables["one_off_cases"]
    return {"person_id": np.concatenate([persons["person_id"], np.char.decode(one_off["person_id"]).astype(object)]),
            "forename": np.concatenate([persons["forename"], one_off["forename"]]),
            "dob": np.concatenate([persons["dob"], one_off["dob"]])}


def _eligibility(world, key) -> dict[str, float]:
    """Share of records each identity corruption can apply to (from the truth)."""
    persons = _people(world)
    pos = np.searchsorted(persons["person_id"], np.array([r["person_id"] for r in key], object))
    lookup = mess.nickname_lookup()
    fore = persons["forename"][pos]
    dob = persons["dob"][pos].astype("datetime64[D]")
    month = dob.astype("datetime64[M]")
    day = (dob - month.astype("datetime64[D]")).astype(int) + 1
    mon = (month - dob.astype("datetime64[Y]").astype("datetime64[M]")).astype(int) + 1
    return {
        "nickname": float(np.mean([bool(lookup.get(f.lower())) for f in fore])),
        "dob_day_month_swap": float(np.mean((day <= 12) & (day != mon))),
    }


@pytest.mark.parametrize("system", ["magistrates", "crown"])
def test_label_rates_match_mess_levels(system, mags, crown_out, small_world):
    key = mags["key"] if system == "magistrates" else crown_out["key"]
    n = len(key)
    counts = Counter(k for r in key for k in filter(None, r["mess"].split(",")))
    elig = _eligibility(small_world, key)
    assert set(counts) <= set(mess.MESS_KINDS) - {"alias_count"}
    # PNC/CRO mess is measured among the records that hold (or lost) the identifier.
    if system == "magistrates":
        pnc_shown = {r["Defendant ID"] for _, _, r, _ in mags["rows"] if r["PNC ID"]}
        cro_shown = {r["Defendant ID"] for _, _, r, _ in mags["rows"] if r["CRO No"]}
    else:
        pnc_shown, cro_shown = set(), set()
        for f in crown_out["files"]:
            doc = etree.parse(str(f))
            for m in doc.getroot().iterfind("x:CaseMessage", NS):
                did = m.findtext(".//x:DefendantID", namespaces=NS)
                if m.find(".//x:PNCId", NS) is not None:
                    pnc_shown.add(did)
                if m.find(".//x:CROno", NS) is not None:
                    cro_shown.add(did)
    labels = _labels(key)
    pnc_lost = {r for r, k in labels.items() if "pnc_missing" in k}
    cro_lost = {r for r, k in labels.items() if "cro_missing" in k}
    conditional = {
        "pnc_missing": (len(pnc_lost), len(pnc_lost | pnc_shown)),
        "cro_missing": (len(cro_lost), len(cro_lost | cro_shown)),
        "pnc_bad_check": (counts["pnc_bad_check"], len(pnc_shown)),
    }
    for kind in mess.FLAT_RECORD_KINDS:
        if kind == "alias_count":
            continue
        rate = RATES[kind]
        if kind in conditional:
            k, m = conditional[kind]
        else:
            rate *= elig.get(kind, 1.0)
            k, m = counts[kind], n
        measured = k / m
        tol = 4 * math.sqrt(max(rate * (1 - rate), 1e-4) / m) + 0.005
        assert abs(measured - rate) <= tol, f"{system} {kind}: {measured:.4f} vs {rate:.4f}"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("module", [magistrates, crown], ids=["magistrates", "crown"])
def test_same_seed_same_bytes(module, small_world, tmp_path):
    a = _emit(module, small_world, tmp_path / "a")
    b = _emit(module, small_world, tmp_path / "b")
    assert a.equals(b)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    _emit(module, small_world, tmp_path / "c", seed=4)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_crown_writes_the_sentence_type_as_its_disposal(crown_docs, small_world):
    """Life, IPP and extended sentences are written as XHIBIT writes them, in texts the staging
    seed (transform/seeds/disposal_codes.csv) maps to immediate custody; a life sentence or IPP
    has a minimum term, not a length, so carries no SentenceYears/Months/Days."""
    seed = Path(__file__).parents[3] / "src/justice/transform/seeds/disposal_codes.csv"
    known = {r["source_disposal"]: r["disposal_type"] for r in csv.DictReader(seed.open())}
    written: Counter = Counter()
    for _, doc in crown_docs:
        for outcome in doc.getroot().iterfind(".//x:Outcome", NS):
            text = outcome.findtext("x:Disposal", namespaces=NS)
            if text is None:
                continue
            written[text] += 1
            has_length = any(outcome.find(f"x:Sentence{u}", NS) is not None for u in ("Years", "Months", "Days"))
            if text in ("LIFE IMPRISONMENT", "IMPRISONMENT FOR PUBLIC PROTECTION"):
                assert not has_length
    assert set(written) <= set(known), set(written) - set(known)
    for text in ("EXTENDED SENTENCE OF IMPRISONMENT", "LIFE IMPRISONMENT", "IMPRISONMENT FOR PUBLIC PROTECTION"):
        assert known[text] == "immediate_custody"
    # The world's extended sentences reach the extract under their own text.
    off = small_world.tables["offences"]
    if np.any((off["sentence_type"] == "extended_determinate") & (off["crown_case_id"] != None)):
        assert written["EXTENDED SENTENCE OF IMPRISONMENT"] > 0
    assert written["IMPRISONMENT"] > 0
