"""The probation (EBCDIC copybook) and interventions (provider xlsx) legacy emitters."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pytest

from justice import identifiers
from justice.sim import mess
from justice.sim.legacy import ethnicity, interventions, probation
from justice.sim.params import SimulationParams
from justice.sim.world import simulate
from justice.sources.copybook import decode_records, parse_copybook

SEED = 11
DATE_FIELDS = ("date_of_birth", "start_date", "planned_end_date", "termination_date",
               "breach_date", "last_updated_date", "extract_date")


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationParams(persons=3000, seed=1))


@pytest.fixture(scope="module")
def rates():
    return mess.load_mess_levels()["default"]


def _emit(module, world, rates, out: Path) -> pa.Table:
    out.mkdir(parents=True, exist_ok=True)
    return module.emit(world.tables, np.random.default_rng(SEED), rates, out, world.params)


@pytest.fixture(scope="module")
def boosted(rates):
    """Default rates with the rare row-level kinds made common enough to test in a small world."""
    return {**rates, "invalid_date": 0.1, "late_correction": 0.1}


def _probation(world, rates, out):
    key = _emit(probation, world, rates, out)
    book = probation.load_copybook()
    files = sorted(out.glob(probation.FILE_GLOB))
    batch = decode_records(book, b"".join(f.read_bytes() for f in files), strict=True)
    return out, key, book, files, batch


@pytest.fixture(scope="module")
def prob(world, rates, tmp_path_factory):
    return _probation(world, rates, tmp_path_factory.mktemp("probation"))


@pytest.fixture(scope="module")
def prob_boosted(world, boosted, tmp_path_factory):
    return _probation(world, boosted, tmp_path_factory.mktemp("probation_boosted"))


@pytest.fixture(scope="module", params=["prob", "prob_boosted"])
def prob_any(request):
    return request.getfixturevalue(request.param)


def _interventions(world, rates, out):
    key = _emit(interventions, world, rates, out)
    sheets = {}
    for f in sorted(out.glob("*.xlsx")):
        wb = openpyxl.load_workbook(f)
        sheets[f.name] = list(wb[interventions.SHEET].iter_rows(values_only=True))
    return out, key, sheets


@pytest.fixture(scope="module")
def iv(world, rates, tmp_path_factory):
    return _interventions(world, rates, tmp_path_factory.mktemp("interventions"))


@pytest.fixture(scope="module")
def iv_boosted(world, boosted, tmp_path_factory):
    return _interventions(world, boosted, tmp_path_factory.mktemp("interventions_boosted"))


@pytest.fixture(scope="module", params=["iv", "iv_boosted"])
def iv_any(request):
    return request.getfixturevalue(request.param)


def _labels(key: pa.Table) -> dict[str, set[str]]:
    return {r: set(filter(None, m.split(","))) for r, m in
            zip(key.column("record_id").to_pylist(), key.column("mess").to_pylist())}


def _share(key: pa.Table, kind: str) -> float:
    return float(np.mean([kind in s for s in _labels(key).values()]))


def _valid_date(value: int) -> bool:
    try:
        dt.date(value // 10_000, value // 100 % 100, value % 100)
    except ValueError:
        return False
    return True


# ---- probation --------------------------------------------------------------------------


def test_copybook_parses_and_is_copied_beside_the_data(prob):
    out, _, book, _, _ = prob
    assert book.record_length == 250
    names = [f.name for f in book.fields]
    for name in ("crn", "event_number", "surname", "forenames", "date_of_birth", "sex", "pnc_id",
                 "cro_number", "order_length_months", "upw_hours_ordered", "ogrs_score",
                 "ethnic_origin"):
        assert name in names
    kinds = {f.name: (f.kind, f.signed) for f in book.fields}
    assert kinds["order_length_months"] == ("zoned", True)
    assert kinds["upw_hours_ordered"] == ("packed", True)
    assert kinds["date_of_birth"] == ("zoned", False)
    copied = (out / probation.COPYBOOK_NAME).read_text("ascii")
    assert copied == probation.copybook_text()
    assert parse_copybook(copied) == parse_copybook(probation.copybook_text())


def test_ethnic_origin_is_one_code_per_crn_with_the_recording_mess(prob, world):
    _, key, _, _, batch = prob
    cols = batch.columns
    code_of: dict[str, set[str]] = collections.defaultdict(set)
    for crn, code in zip(cols["crn"], cols["ethnic_origin"], strict=True):
        code_of[crn].add(code)
    assert all(len(codes) == 1 for codes in code_of.values())  # held on the offender
    groups, ref = ethnicity.code_groups(), ethnicity.reference()
    person = dict(zip(key.column("record_id").to_pylist(), key.column("person_id").to_pylist(),
                      strict=True))
    persons = world.tables["persons"]
    true_group = dict(zip(persons["person_id"].tolist(), persons["ethnicity"].tolist(), strict=True))
    per_crn = {crn: codes.pop() for crn, codes in code_of.items()}
    assert set(per_crn.values()) <= set(groups)
    not_stated = np.mean([c == ethnicity.NOT_STATED for c in per_crn.values()])
    assert abs(not_stated - ref["not_stated"]) < 0.02
    stated = [(crn, c) for crn, c in per_crn.items() if c != ethnicity.NOT_STATED]
    right = np.mean([groups[c] == true_group[person[crn]] for crn, c in stated])
    assert 1 - ref["recoded"] - 0.02 < right < 1


def test_one_file_per_month_each_whole_records(prob_any, world):
    _, _, book, files, _ = prob_any
    p = world.params
    months = (p.end.year - p.start.year) * 12 + p.end.month - p.start.month + 1
    assert len(files) == months
    assert files[0].name == f"DELIUS.EXTRACT.D{p.start:%y%m}.DAT"
    assert files[-1].name == f"DELIUS.EXTRACT.D{p.end:%y%m}.DAT"
    for f in files:
        assert f.stat().st_size % book.record_length == 0, f.name
    assert b"\n" not in b"".join(f.read_bytes()[:book.record_length] for f in files)


def test_decoded_records_are_valid_and_keys_match(prob_any):
    _, key, _, _, batch = prob_any
    assert batch.n_records > 0 and batch.trailing_bytes == 0
    assert not batch.invalid_records().any()
    cols = batch.columns
    assert set(cols["record_type"]) == {"EV"}
    assert all(identifiers.CRN_RE.match(c) for c in cols["crn"])
    record_ids = key.column("record_id").to_pylist()
    assert len(record_ids) == len(set(record_ids))
    assert set(cols["crn"]) == set(record_ids)
    assert set(cols["supervision_type"]) <= {"CO", "SSO", "LIC"}
    assert set(cols["termination_reason"]) <= {"", "CM", "CB", "LE"}
    assert set(cols["sex"]) <= {"M", "F"}
    upw = batch.numeric_values("upw_hours_ordered") / 10
    assert (upw >= 0).all() and (upw <= 300).all() and (upw > 0).any()
    assert (upw[cols["supervision_type"] == "LIC"] == 0).all()
    ogrs = batch.numeric_values("ogrs_score") / 100
    assert (ogrs >= 0).all() and (ogrs < 100).all() and len(np.unique(ogrs)) > 50
    months = batch.numeric_values("order_length_months")
    assert (months >= 0).all() and (months > 0).any()
    assert all(p == "" or identifiers.PNC_RE.match(p) for p in cols["pnc_id"])
    assert all(c == "" or identifiers.CRO_RE.match(c) for c in cols["cro_number"])


def test_dates_invalid_only_where_labelled(prob_any):
    _, key, _, _, batch = prob_any
    labels = _labels(key)
    crns = batch.columns["crn"]
    for name in DATE_FIELDS:
        values = batch.numeric_values(name)
        ok = np.array([v == 0 or _valid_date(int(v)) for v in values])
        if name == "date_of_birth":
            bad_crns = set(crns[~ok])
            assert bad_crns == {c for c, s in labels.items() if "invalid_date" in s}
            zero_crns = set(crns[values == 0])
            assert zero_crns == {c for c, s in labels.items() if "dob_missing" in s}
        else:
            assert ok.all(), name
    for name in ("start_date", "planned_end_date", "last_updated_date", "extract_date"):
        assert (batch.numeric_values(name) > 0).all()


def test_records_agree_with_the_truth(prob_any, world):
    _, key, _, _, batch = prob_any
    persons = world.tables["persons"]
    crn_of = dict(zip(persons["person_id"], persons["crn"]))
    real_crns = set(crn_of.values())
    labels = _labels(key)
    by_person = collections.defaultdict(list)
    for r, p in zip(key.column("record_id").to_pylist(), key.column("person_id").to_pylist()):
        by_person[p].append(r)
        if "duplicate_row" in labels[r]:
            assert r not in real_crns
        else:
            assert crn_of[p] == r
    for p, crns in by_person.items():
        assert crn_of[p] in crns  # a duplicate registration never replaces the real CRN
    # Clean CRNs carry the true identity in every record.
    truth = {r: i for i, r in enumerate(persons["crn"]) if r is not None}
    cols = batch.columns
    for i in range(batch.n_records):
        c = cols["crn"][i]
        if labels[c] or c not in truth:
            continue
        t = truth[c]
        assert cols["surname"][i] == persons["surname"][t].upper()
        assert cols["forenames"][i].split(" ")[0] == persons["forename"][t].upper()
        dob = np.datetime64(int(persons["dob"][t]), "D").astype(dt.date)
        assert cols["date_of_birth"][i] == f"{dob:%Y%m%d}"


def test_identity_shared_per_crn_except_late_corrections(prob_any):
    _, key, _, _, batch = prob_any
    labels = _labels(key)
    cols = batch.columns
    seen: dict[str, list[tuple]] = collections.defaultdict(list)
    for i in range(batch.n_records):
        seen[cols["crn"][i]].append((cols["extract_date"][i], cols["surname"][i],
                                     cols["forenames"][i], cols["date_of_birth"][i]))
    corrected = {c for c, s in labels.items() if "late_correction" in s}
    for c, recs in seen.items():
        if c in corrected:
            recs.sort()
            assert recs[0][1] != recs[-1][1]  # the earliest surname was corrected later
            assert recs[0][0] < recs[-1][0]
            assert len({r[1] for r in recs}) == 2
        else:
            assert len({r[1:] for r in recs}) == 1, c


def test_rare_row_kinds_appear_when_common(prob_boosted, iv_boosted, boosted):
    for key in (prob_boosted[1], iv_boosted[1]):
        assert _share(key, "invalid_date") > boosted["invalid_date"] / 4
    assert _share(prob_boosted[1], "late_correction") > boosted["late_correction"] / 3


def test_probation_label_rates(prob, world, rates):
    _, key, _, _, _ = prob
    n = key.num_rows
    tol = 3 * np.sqrt(0.25 / n)
    assert abs(_share(key, "duplicate_row") - rates["duplicate_row"]) < tol
    persons = world.tables["persons"]
    truth = dict(zip(persons["person_id"], persons["cro_number"]))
    has_cro = np.mean([truth[p] is not None for p in key.column("person_id").to_pylist()])
    assert abs(_share(key, "cro_missing") - rates["cro_missing"] * has_cro) < tol
    for kind in mess.FLAT_RECORD_KINDS:
        if kind != "alias_count":
            assert _share(key, kind) <= rates[kind] + tol, kind
    assert _share(key, "nickname") > rates["nickname"] / 3


# ---- interventions ------------------------------------------------------------------------


def test_year_spans_merge_to_sixty():
    spans = interventions.year_spans(np.array([2014, 2015, 2016, 2017]), np.array([30, 40, 70, 10]))
    assert spans == [[2014, 2015], [2016, 2017]]
    assert interventions.year_spans(np.array([2020]), np.array([5])) == [[2020]]


def test_workbooks_have_the_documented_layout(iv_any):
    _, _, sheets = iv_any
    assert sheets
    pattern = re.compile(r"^[a-z0-9-]+__[a-z0-9-]+__\d{4}(-\d{4})?\.xlsx$")
    for name, rows in sheets.items():
        assert pattern.match(name), name
        assert rows[0][0].startswith("Participant list \u2013 ")
        assert rows[interventions.HEADER_ROW - 1] == interventions.HEADER
        for row in rows[interventions.FIRST_DATA_ROW - 1:]:
            assert row[0] and row[1] and isinstance(row[4], dt.datetime)
            assert row[2] is None or isinstance(row[2], dt.datetime | str)


def test_files_hold_sixty_participants(iv, world):
    _, key, sheets = iv
    tab = world.tables["interventions"]
    totals = collections.Counter(zip(tab["provider"], tab["programme"]))
    labels = _labels(key)
    originals = collections.Counter(r.split(":")[0] for r, s in labels.items()
                                    if "duplicate_row" not in s)
    for (provider, programme), total in totals.items():
        prefix = f"{interventions.slug(provider)}__{interventions.slug(programme)}__"
        files = [f for f in sheets if f.startswith(prefix)]
        assert files
        assert sum(originals[f] for f in files) == total
        if total >= interventions.MIN_PARTICIPANTS:
            assert all(originals[f] >= interventions.MIN_PARTICIPANTS for f in files)
        else:
            assert len(files) == 1  # fewer than 60 in all: one file anyway


def test_record_ids_point_at_participant_rows(iv_any, world):
    _, key, sheets = iv_any
    record_ids = key.column("record_id").to_pylist()
    assert len(record_ids) == len(set(record_ids))
    expected = {f"{name}:{r}" for name, rows in sheets.items()
                for r in range(interventions.FIRST_DATA_ROW, len(rows) + 1)}
    assert set(record_ids) == expected
    persons = world.tables["persons"]
    index = {p: i for i, p in enumerate(persons["person_id"])}
    for rid, pid, m in zip(record_ids, key.column("person_id").to_pylist(),
                           key.column("mess").to_pylist()):
        name, row = rid.rsplit(":", 1)
        cells = sheets[name][int(row) - 1]
        if m == "":
            t = index[pid]
            assert cells[0].lower() == persons["forename"][t].lower()
            assert cells[1].lower() == persons["surname"][t].lower()
            if isinstance(cells[2], dt.datetime):
                dob = np.datetime64(int(persons["dob"][t]), "D").astype(dt.date)
                assert cells[2].date() == dob


def _parse_text_date(text: str) -> dt.date | None:
    for fmt in ("%d/%m/%Y", "%d %B %Y", "%Y-%m-%d", "%d-%b-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def test_dates_of_birth_typed_as_people_do(iv_any):
    _, key, sheets = iv_any
    labels = _labels(key)
    kinds = collections.Counter()
    for rid, s in labels.items():
        name, row = rid.rsplit(":", 1)
        value = sheets[name][int(row) - 1][2]
        if isinstance(value, str):
            parsed = _parse_text_date(value)
            assert (parsed is None) == ("invalid_date" in s), value
            assert re.match(r"^\d{2}/\d{2}/\d{4}$", value) or parsed is not None
            kinds["text"] += 1
        else:
            assert "invalid_date" not in s
            kinds["date" if value else "blank"] += 1
            assert (value is None) == ("dob_missing" in s)
    assert kinds["date"] > kinds["text"] > 0


def test_identifier_shares_and_rates(iv, rates):
    _, key, sheets = iv
    rows = [r for name, rs in sheets.items() for r in rs[interventions.FIRST_DATA_ROW - 1:]]
    n = len(rows)
    tol = 3 * np.sqrt(0.25 / n)
    pnc = np.mean([r[5] is not None for r in rows])
    prison = np.mean([r[6] is not None for r in rows])
    assert abs(pnc - interventions.PNC_SHARE) < tol
    assert abs(prison - interventions.PRISON_SHARE) < tol
    assert all(identifiers.PRISON_NUMBER_RE.match(r[6]) for r in rows if r[6] is not None)
    assert abs(_share(key, "duplicate_row") - rates["duplicate_row"]) < tol
    assert _share(key, "cro_missing") == 0  # providers never hold CRO numbers
    for kind in mess.FLAT_RECORD_KINDS:
        if kind != "alias_count":
            assert _share(key, kind) <= rates[kind] + tol, kind


# ---- determinism --------------------------------------------------------------------------


def _digests(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


@pytest.mark.parametrize("module", [probation, interventions], ids=["probation", "interventions"])
def test_same_seed_same_bytes(module, world, rates, tmp_path):
    a = _emit(module, world, rates, tmp_path / "a")
    b = _emit(module, world, rates, tmp_path / "b")
    assert a.equals(b)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


_CHILD = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from justice.sim import mess
from justice.sim.legacy import interventions, probation
from justice.sim.params import SimulationParams
from justice.sim.world import simulate
world = simulate(SimulationParams(persons=3000, seed=1))
rates = mess.load_mess_levels()["default"]
out = {}
for m in (probation, interventions):
    d = Path(sys.argv[1]) / m.SYSTEM
    d.mkdir(parents=True)
    m.emit(world.tables, np.random.default_rng(int(sys.argv[2])), rates, d, world.params)
    out.update({f"{m.SYSTEM}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(d.iterdir())})
print(json.dumps(out))
"""


def test_bytes_do_not_depend_on_the_process(world, rates, tmp_path, prob, iv):
    env = dict(os.environ, PYTHONHASHSEED="12345", TZ="America/New_York")
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), str(SEED)], env=env,
                          capture_output=True, text=True, check=True)
    child = json.loads(done.stdout)
    here = {f"probation/{k}": v for k, v in _digests(prob[0]).items()}
    here.update({f"interventions/{k}": v for k, v in _digests(iv[0]).items()})
    assert child == here
