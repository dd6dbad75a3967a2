"""The fixed-width EBCDIC reader on the simulated probation extracts and on hand-made bad files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from justice.errors import CopybookError, SchemaDriftError, SourceError
from justice.sim.legacy import probation
from justice.sim.params import SimulationParams
from justice.sim.world import simulate_to
from justice.sources.copybook import encode_records
from justice.sources.readers import fixed_width
from justice.sources.reading import REJECT_SCHEMA, Lineage
from justice.sources.spec import LINEAGE_COLUMNS, builtin_spec_dir, load_spec

LINEAGE = Lineage(load_id="load-1", extracted_at="2026-01-02T03:04:05")
LENGTH = 250


@pytest.fixture(scope="module")
def spec():
    return load_spec(builtin_spec_dir() / "probation.yaml")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    simulate_to(SimulationParams(persons=2000, seed=1), out)
    return out


@pytest.fixture(scope="module")
def folder(world) -> Path:
    return world / "legacy" / "probation"


def _read(spec, path: Path, **kwargs) -> list:
    return list(fixed_width.read(spec, str(path), LINEAGE, **kwargs))


def _rows(batches) -> pa.Table:
    return pa.concat_tables([b.rows for b in batches])


def _rejects(batches) -> pa.Table:
    return pa.concat_tables([b.rejects for b in batches])


# A record with every kind of value, encoded with the shipped copybook.
RECORD = {
    "record_type": "EV", "crn": "X123456", "event_number": 7, "surname": " O'BRIEN  SMITH",
    "forenames": "ZOË ANN", "date_of_birth": 0, "sex": "F", "pnc_id": "1998/1234567L",
    "cro_number": None, "supervision_type": "SSO", "start_date": 20200115,
    "planned_end_date": 20210114, "termination_date": 0, "termination_reason": None,
    "breach_date": 20200301, "region_code": "LDN", "pdu_code": "LDNP02",
    "order_length_months": -12, "upw_hours_ordered": 1205, "ogrs_score": 3625,
    "last_updated_date": 20200301, "extract_date": 20200331, "ethnic_origin": "B1",
}


def _records(n: int, **changes) -> bytes:
    """`n` records like RECORD (CRNs X000000, X000001, ...), encoded with the real layout."""
    book = probation._integer_layout(probation.load_copybook())
    columns = {k: [v] * n for k, v in {**RECORD, **changes}.items()}
    columns["crn"] = [f"X{i:06d}" for i in range(n)]
    return encode_records(book, columns)


def _system(tmp_path: Path, data: bytes, name: str = "DELIUS.EXTRACT.D2003.DAT") -> Path:
    """A probation system folder holding the copybook and one data file; the file's path."""
    (tmp_path / probation.COPYBOOK_NAME).write_text(probation.copybook_text(), "ascii")
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# The whole simulated system
# --------------------------------------------------------------------------------------------


def test_reads_every_record_of_the_simulated_probation_system(spec, folder, world):
    files = sorted(folder.glob(spec.files))
    assert len(files) > 100
    batches = []
    for path in files:
        got = _read(spec, path, relative_name=path.name)
        rows, rejects = _rows(got), _rejects(got)
        # Rows read = rows + rejects, and each file is a whole number of records.
        assert rows.num_rows + rejects.num_rows == path.stat().st_size // LENGTH, path.name
        assert rejects.num_rows == 0
        assert set(rows["_file"].to_pylist()) <= {path.name}
        assert rows["_locator"].to_pylist() == [f"byte {i * LENGTH}" for i in range(rows.num_rows)]
        batches += got
    rows = _rows(batches)
    table = spec.tables[0]
    assert rows.column_names == [f.name for f in table.fields] + list(LINEAGE_COLUMNS)
    assert all(t == pa.string() for t in rows.schema.types)
    assert all(b.new_columns == () for b in batches)
    truth = pq.read_table(world / "truth" / "records.parquet").filter(
        pc.equal(pc.field("system"), "probation"))
    assert set(rows["crn"].to_pylist()) == set(truth["record_id"].to_pylist())
    assert set(rows["record_type"].to_pylist()) == {"EV"}
    # Unsigned DISPLAY numbers keep their digits; dates are 8 digits or zero.
    assert set(pc.utf8_length(rows["event_number"]).to_pylist()) == {3}
    assert set(pc.utf8_length(rows["date_of_birth"]).to_pylist()) == {8}


def test_values_are_the_source_text(spec, tmp_path):
    path = _system(tmp_path, _records(2))
    [batch] = _read(spec, path)
    row = batch.rows.to_pylist()[1]
    assert {k: row[k] for k in RECORD} == {
        "record_type": "EV", "crn": "X000001", "event_number": "007",
        "surname": " O'BRIEN  SMITH",  # leading and inner spaces kept; the padding is not
        "forenames": "ZOË ANN", "date_of_birth": "00000000", "sex": "F", "pnc_id": "1998/1234567L",
        "cro_number": "", "supervision_type": "SSO", "start_date": "20200115",
        "planned_end_date": "20210114", "termination_date": "00000000", "termination_reason": "",
        "breach_date": "20200301", "region_code": "LDN", "pdu_code": "LDNP02",
        "order_length_months": "-12", "upw_hours_ordered": "120.5", "ogrs_score": "36.25",
        "last_updated_date": "20200301", "extract_date": "20200331", "ethnic_origin": "B1",
    }
    assert (row["_system"], row["_table"], row["_file"], row["_locator"]) == (
        "probation", "offender_events", path.name, "byte 250")
    assert (row["_load_id"], row["_extracted_at"]) == (LINEAGE.load_id, LINEAGE.extracted_at)


def test_chunks_stream_the_same_rows(spec, tmp_path):
    data = _records(50) + b"\x40" * 30
    path = _system(tmp_path, data)
    whole = _read(spec, path)
    small = _read(replace(spec, options={**spec.options, "chunk_records": 7}), path)
    assert [b.rows.num_rows for b in small] == [7] * 7 + [1]
    assert _rows(small).equals(_rows(whole))
    assert _rejects(small).equals(_rejects(whole))
    assert _rejects(small)["_locator"].to_pylist() == [f"byte {50 * LENGTH}"]


# --------------------------------------------------------------------------------------------
# Bad records
# --------------------------------------------------------------------------------------------


def test_invalid_numbers_and_control_bytes_are_rejected_whole(spec, tmp_path):
    book = probation.load_copybook()
    data = bytearray(_records(6))
    ogrs, dob, surname = (book.field(n) for n in ("ogrs_score", "date_of_birth", "surname"))
    data[1 * LENGTH + ogrs.offset] = 0xAB  # a packed nibble that is not a digit
    data[3 * LENGTH + dob.offset] = 0xC1  # a zone that is not F in the middle of 9(8)
    data[4 * LENGTH + surname.offset + 2] = 0x00  # LOW-VALUES inside a name
    path = _system(tmp_path, bytes(data))
    [batch] = _read(spec, path, relative_name="probation/" + path.name)
    assert batch.rows.num_rows + batch.rejects.num_rows == 6
    assert batch.rows["crn"].to_pylist() == ["X000000", "X000002", "X000005"]
    rejects = batch.rejects
    assert rejects.schema == REJECT_SCHEMA
    assert rejects["rule"].to_pylist() == ["invalid_numeric", "invalid_numeric", "invalid_text"]
    assert rejects["_locator"].to_pylist() == ["byte 250", "byte 750", "byte 1000"]
    assert rejects["_file"].to_pylist() == ["probation/" + path.name] * 3
    reasons = rejects["reason"].to_pylist()
    assert f"OGRS-SCORE at byte {LENGTH + ogrs.offset:,} is not valid COMP-3" in reasons[0]
    assert f"DATE-OF-BIRTH at byte {3 * LENGTH + dob.offset:,} is not valid zoned" in reasons[1]
    assert f"SURNAME at byte {4 * LENGTH + surname.offset:,} holds EBCDIC control" in reasons[2]
    # raw is the whole record in hex: nothing is lost.
    assert [bytes.fromhex(r) for r in rejects["raw"].to_pylist()] == [
        bytes(data[i * LENGTH:(i + 1) * LENGTH]) for i in (1, 3, 4)]


def test_truncated_last_record_is_a_reject(spec, tmp_path):
    data = _records(3)
    path = _system(tmp_path, data[:-100])
    [batch] = _read(spec, path)
    assert batch.rows.num_rows == 2
    [reject] = batch.rejects.to_pylist()
    assert reject["rule"] == "truncated_record"
    assert reject["_locator"] == "byte 500"
    assert "150 bytes into a 250-byte record that starts at byte 500" in reject["reason"]
    assert bytes.fromhex(reject["raw"]) == data[500:-100]


def test_a_file_shorter_than_one_record_is_one_truncated_record(spec, tmp_path):
    path = _system(tmp_path, _records(1)[:40])
    [batch] = _read(spec, path)
    assert batch.rows.num_rows == 0
    assert batch.rejects["rule"].to_pylist() == ["truncated_record"]


# --------------------------------------------------------------------------------------------
# Whole-file problems
# --------------------------------------------------------------------------------------------


def test_empty_file(spec, tmp_path):
    path = _system(tmp_path, b"")
    # The probation extract writes an empty file for a month without changes.
    [batch] = _read(spec, path)
    assert batch.rows.num_rows == 0 and batch.rejects.num_rows == 0
    assert batch.rows.column_names[:3] == ["record_type", "crn", "event_number"]
    strict = replace(spec, options={**spec.options, "allow_empty_files": False})
    with pytest.raises(SourceError, match=r"DELIUS.EXTRACT.D2003.DAT is empty \(0 bytes\)"):
        _read(strict, path)


def test_missing_copybook(spec, tmp_path):
    path = tmp_path / "DELIUS.EXTRACT.D2003.DAT"
    path.write_bytes(_records(2))
    with pytest.raises(SourceError, match=r"copybook probation.cpy not found \(looked in "):
        _read(spec, path)


def test_copybook_falls_back_to_the_spec_folder(spec, tmp_path):
    data_dir, spec_dir = tmp_path / "data", tmp_path / "specs"
    data_dir.mkdir()
    spec_dir.mkdir()
    path = data_dir / "DELIUS.EXTRACT.D2003.DAT"
    path.write_bytes(_records(2))
    shutil.copy(builtin_spec_dir() / "probation.yaml", spec_dir / "probation.yaml")
    (spec_dir / "probation.cpy").write_text(probation.copybook_text(), "ascii")
    [batch] = _read(load_spec(spec_dir / "probation.yaml"), path)
    assert batch.rows.num_rows == 2


def test_unparsable_copybook_is_a_copybook_error(spec, tmp_path):
    path = _system(tmp_path, _records(2))
    (tmp_path / probation.COPYBOOK_NAME).write_text("       01  REC.\n           05  A PIC X(2)\n")
    with pytest.raises(CopybookError, match="no terminating period"):
        _read(spec, path)


def test_copybook_that_does_not_fit_the_data(spec, tmp_path):
    path = _system(tmp_path, _records(40))
    shorter = probation.copybook_text().replace("PIC X(62)", "PIC X(58)")  # LRECL 246
    (tmp_path / probation.COPYBOOK_NAME).write_text(shorter, "ascii")
    with pytest.raises(SourceError, match=r"does not fit the copybook .*not a whole number of "
                                          r"246-byte records"):
        _read(spec, path)


def test_missing_required_field_is_schema_drift_and_new_fields_are_kept(spec, tmp_path):
    path = _system(tmp_path, _records(2))
    table = spec.tables[0]
    renamed = probation.copybook_text().replace("EVENT-NUMBER ", "EVENT-NO     ")
    (tmp_path / probation.COPYBOOK_NAME).write_text(renamed, "ascii")
    with pytest.raises(SchemaDriftError, match=r"has no field EVENT-NUMBER \(field event_number, "
                                               r"required\).*Update the spec or the source"):
        _read(spec, path)
    # A copybook field the spec does not declare lands as x_<name>.
    (tmp_path / probation.COPYBOOK_NAME).write_text(probation.copybook_text(), "ascii")
    fewer = replace(spec, tables=(replace(table, fields=tuple(
        f for f in table.fields if f.name != "ogrs_score")),))
    [batch] = _read(fewer, path)
    assert batch.new_columns == ("x_ogrs_score",)
    assert batch.rows["x_ogrs_score"].to_pylist() == ["36.25", "36.25"]
    assert batch.rows.column_names[-len(LINEAGE_COLUMNS) - 1] == "x_ogrs_score"


def test_a_declared_optional_field_the_copybook_lacks_is_null(spec, tmp_path):
    path = _system(tmp_path, _records(1))
    table = spec.tables[0]
    extra = replace(spec, tables=(replace(table, fields=(
        *table.fields, replace(table.fields[-1], source="CASE-MANAGER", name="case_manager",
                               required=False))),))
    [batch] = _read(extra, path)
    assert batch.rows["case_manager"].to_pylist() == [None]


def test_unreadable_file_and_wrong_encoding(spec, tmp_path):
    (tmp_path / probation.COPYBOOK_NAME).write_text(probation.copybook_text(), "ascii")
    with pytest.raises(SourceError, match="cannot be read"):
        _read(spec, tmp_path / "DELIUS.EXTRACT.D9999.DAT")
    with pytest.raises(SourceError, match="encoding 'cp1252' is not supported"):
        _read(replace(spec, encoding="cp1252"), tmp_path / "x.DAT")


# --------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------

# Peak memory is the child's VmHWM: Linux keeps ru_maxrss across execve, so a child of a large
# pytest worker would report the worker's size.
_STREAM = """
import resource, sys, time
from justice.sources.reading import Lineage
from justice.sources.readers import fixed_width
from justice.sources.spec import builtin_spec_dir, load_spec
spec = load_spec(builtin_spec_dir() / "probation.yaml")
start = time.perf_counter()
rows = batches = biggest = 0
for batch in fixed_width.read(spec, sys.argv[1], Lineage("l", "t")):
    rows += batch.rows.num_rows + batch.rejects.num_rows
    batches += 1
    biggest = max(biggest, batch.rows.num_rows)
seconds = time.perf_counter() - start
print(rows, batches, biggest, round(rows / seconds),
      int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)
"""


@pytest.mark.slow
def test_a_million_records_stream_in_bounded_memory(tmp_path):
    block = _records(10_000)
    path = _system(tmp_path, b"")
    with path.open("wb") as out:
        for _ in range(100):
            out.write(block)
    assert path.stat().st_size == 1_000_000 * LENGTH  # 250 MB
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_STREAM), str(path)],
                          capture_output=True, text=True, check=True)
    rows, batches, biggest, per_second, peak_mb = map(int, done.stdout.split())
    print(f"fixed-width reader: {rows:,} records in {batches} batches, {per_second:,} records/s, "
          f"peak RSS {peak_mb} MB")
    assert rows == 1_000_000 and batches == 10 and biggest == fixed_width.CHUNK_RECORDS
    assert peak_mb < 700  # the whole file alone is 250 MB; decoded whole it would be GBs
