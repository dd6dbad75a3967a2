"""Tests for justice.sources.readers.csv: the simulated magistrates' files, then every way a
CSV file can be bad (each checked for rows read = rows + rejects)."""

from __future__ import annotations

import csv as pycsv
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from justice.errors import ConfigError, SchemaDriftError, SourceError
from justice.sources.readers import csv as reader
from justice.sources.reading import REJECT_SCHEMA, Batch, Lineage
from justice.sources.spec import LINEAGE_COLUMNS, builtin_spec_dir, load_spec, parse_spec

LINEAGE = Lineage(load_id="load-1", extracted_at="2026-01-02T03:04:05")
MAGISTRATES = builtin_spec_dir() / "magistrates.yaml"
HEADER = ("Case No.,Court Code,COURT_NAME,Defendant ID,Defendant Surname,DEF_FORENAME,D.O.B,Sex,"
          "Postcode ,PNC ID,CRO No,Off Seq,Offence Code,Offence Wording,Offence Date,Charge Date,"
          "First Hearing Date,Plea,Verdict,Disposal,Fine Amount,Custody Length,Custody Unit,"
          "Next Hearing Date")


def read_all(spec, path: Path, **kw) -> list[Batch]:
    return list(reader.read(spec, str(path), LINEAGE, **kw))


def rows_of(batches: list[Batch]) -> pa.Table:
    return pa.concat_tables([b.rows for b in batches])


def rejects_of(batches: list[Batch]) -> pa.Table:
    return pa.concat_tables([b.rejects for b in batches])


def record(n: int, surname: str = "SMITH", wording: str = "Theft from a shop") -> str:
    """One magistrates' line (24 fields) for defendant D000000<n>."""
    return (f"LBB0200100{n:05d},B02001,NORTH MAGISTRATES' COURT,D{n:09d},{surname},JOHN,"
            f"01/02/1990,M,AB1 2CD,,,1,TH68010,{wording},01/01/2020,02/01/2020,03/01/2020,G,"
            "GUILTY,FINE,100.00,,,")


def write(path: Path, lines: list[str | bytes], end: bytes = b"\r\n", final_end: bool = True,
          header: str | bytes = HEADER) -> Path:
    """A cp1252 file of the header and `lines` (bytes are written as they are)."""
    parts = [x if isinstance(x, bytes) else x.encode("cp1252") for x in [header, *lines]]
    data = end.join(parts) + (end if final_end else b"")
    path.write_bytes(data)
    return path


def check_accounting(batches: list[Batch], expected_records: int) -> None:
    """Rows read = rows + rejects, and every batch is well formed."""
    assert sum(b.rows.num_rows + b.rejects.num_rows for b in batches) == expected_records
    for b in batches:
        assert b.rejects.schema == REJECT_SCHEMA
        assert tuple(b.rows.column_names[-len(LINEAGE_COLUMNS):]) == LINEAGE_COLUMNS
        assert all(t == pa.string() for t in b.rows.schema.types)


@pytest.fixture(scope="module")
def spec():
    return load_spec(MAGISTRATES)


# ---------------------------------------------------------------------------------------------
# The simulated system
# ---------------------------------------------------------------------------------------------


def test_reads_every_simulated_magistrates_record(small_truth, spec) -> None:
    out, _ = small_truth
    root = out / "legacy" / "magistrates"
    files = sorted(root.glob(spec.files))
    assert files
    batches, data_lines = [], 0
    for f in files:
        got = read_all(spec, f, relative_name=str(f.relative_to(root)))
        assert len(got) == 1 and got[0].new_columns == ()
        batches += got
        data_lines += f.read_bytes().count(b"\n") - 1
    rows = rows_of(batches)
    check_accounting(batches, data_lines)
    assert rejects_of(batches).num_rows == 0  # the simulated files are well-formed CSV
    truth = pq.read_table(out / "truth" / "records.parquet")
    truth = truth.filter(pc.equal(truth["system"], "magistrates"))
    assert set(rows["defendant_id"].to_pylist()) == set(truth["record_id"].to_pylist())
    # "Postcode " (trailing space in the header) matched the spec's "Postcode"
    assert pc.sum(pc.not_equal(rows["postcode"], "")).as_py() > 0.9 * rows.num_rows
    assert set(rows["_file"].to_pylist()) == {str(f.relative_to(root)) for f in files}
    assert set(rows["_system"].to_pylist()) == {"magistrates"}
    assert set(rows["_load_id"].to_pylist()) == {"load-1"}
    assert not any("\r" in v for v in rows["next_hearing_date"].to_pylist())


def test_locator_is_the_physical_line_of_the_record(small_truth, spec) -> None:
    out, _ = small_truth
    root = out / "legacy" / "magistrates"
    f = max(root.glob(spec.files), key=lambda p: p.stat().st_size)
    rows = rows_of(read_all(spec, f))
    lines = f.read_bytes().decode("cp1252").split("\r\n")
    for loc, def_id, case in zip(rows["_locator"].to_pylist(), rows["defendant_id"].to_pylist(),
                                 rows["case_number"].to_pylist(), strict=True):
        n = int(loc.removeprefix("line "))
        assert lines[n - 1].startswith(f"{case},") and f",{def_id}," in lines[n - 1]


# ---------------------------------------------------------------------------------------------
# Values, header matching, columns
# ---------------------------------------------------------------------------------------------


def test_values_are_kept_exactly_and_empty_is_empty_string(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1, surname=" O'NEIL  ", wording='"Assault, common"'),
                                   record(2, wording='"He said ""stop"""')])
    rows = rows_of(read_all(spec, f)).to_pylist()
    assert rows[0]["surname"] == " O'NEIL  "
    assert rows[0]["offence_wording"] == "Assault, common"
    assert rows[1]["offence_wording"] == 'He said "stop"'
    assert rows[0]["pnc_id"] == "" and rows[0]["next_hearing_date"] == ""
    assert [r["_locator"] for r in rows] == ["line 2", "line 3"]
    assert rows[0]["_file"] == "a.csv"


def test_cp1252_text_is_decoded(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1, surname="O\u2019BRIEN"), record(2, surname="GÓMEZ")])
    rows = rows_of(read_all(spec, f))
    assert rows["surname"].to_pylist() == ["O\u2019BRIEN", "GÓMEZ"]


def test_new_column_is_kept_and_reported(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1) + ",Y"], header=HEADER + ",Interpreter Needed?")
    (batch,) = read_all(spec, f)
    assert batch.new_columns == ("x_interpreter_needed",)
    assert batch.rows["x_interpreter_needed"].to_pylist() == ["Y"]
    assert batch.rows.column_names.index("x_interpreter_needed") == 24  # after declared fields


def test_missing_required_column_is_schema_drift(tmp_path, spec) -> None:
    header = HEADER.replace("Defendant ID,", "")
    f = write(tmp_path / "a.csv", [record(1).replace(",D000000001,", ",")], header=header)
    with pytest.raises(SchemaDriftError, match=r"a\.csv.*'Defendant ID'.*update the spec or the "
                                               r"source"):
        read_all(spec, f)


def test_missing_optional_column_lands_as_nulls(tmp_path, spec) -> None:
    header = HEADER.replace(",Next Hearing Date", "")
    f = write(tmp_path / "a.csv", [record(1).removesuffix(",")], header=header)
    (batch,) = read_all(spec, f)
    assert batch.rows["next_hearing_date"].to_pylist() == [None]
    assert batch.rows["verdict"].to_pylist() == ["GUILTY"]


def test_exact_header_match_wins_over_stripped(tmp_path) -> None:
    s = parse_spec({"system": "t", "format": "csv", "files": "*.csv",
                    "tables": [{"name": "t", "fields": [{"source": "A", "name": "a"},
                                                        {"source": "A ", "name": "a_space"}]}]})
    f = tmp_path / "t.csv"
    f.write_bytes(b"A ,A\n1,2\n")
    rows = rows_of(read_all(s, f)).to_pylist()
    assert (rows[0]["a"], rows[0]["a_space"]) == ("2", "1")


def test_header_false_names_columns_by_position(tmp_path) -> None:
    s = parse_spec({"system": "t", "format": "csv", "files": "*.csv", "options": {"header": False,
                    "delimiter": "|"}, "tables": [{"name": "t", "fields": [
                        {"source": "2", "name": "second", "required": True}]}]})
    f = tmp_path / "t.csv"
    f.write_bytes(b"a|b|c\nd|e|f\n")
    (batch,) = read_all(s, f)
    assert batch.rows["second"].to_pylist() == ["b", "e"]
    assert batch.rows["_locator"].to_pylist() == ["line 1", "line 2"]
    assert batch.new_columns == ("x_1", "x_3")


def test_bad_options_are_config_errors(tmp_path) -> None:
    base = {"system": "t", "format": "csv", "files": "*.csv",
            "tables": [{"name": "t", "fields": [{"source": "A", "name": "a"}]}]}
    f = tmp_path / "t.csv"
    f.write_bytes(b"A\n1\n")
    for options, pattern in (({"delimeter": ";"}, "delimeter"), ({"delimiter": ";;"}, "one"),
                             ({"chunk_rows": 0}, "chunk_rows")):
        with pytest.raises(ConfigError, match=pattern):
            read_all(parse_spec({**base, "options": options}), f)
    with pytest.raises(ConfigError, match="ASCII-compatible"):
        read_all(parse_spec({**base, "encoding": "utf-16"}), f)


# ---------------------------------------------------------------------------------------------
# Row-level problems: rejects, never a crash
# ---------------------------------------------------------------------------------------------


def test_undecodable_bytes_reject_only_their_row(tmp_path, spec) -> None:
    bad = record(2).encode("cp1252").replace(b"SMITH", b"SM\x81TH")  # 0x81: not in cp1252
    f = write(tmp_path / "a.csv", [record(1), bad, record(3)])
    batches = read_all(spec, f)
    check_accounting(batches, 3)
    assert rows_of(batches)["defendant_id"].to_pylist() == ["D000000001", "D000000003"]
    (rej,) = rejects_of(batches).to_pylist()
    assert rej["rule"] == "undecodable" and rej["_locator"] == "line 3"
    assert "SM\\x81TH" in rej["raw"] and rej["raw"].startswith("LBB020010000002,")
    assert "field 5" in rej["reason"] and "cp1252" in rej["reason"]


def test_wrong_declared_encoding(tmp_path, spec) -> None:
    """A cp1252 file read as UTF-8: the rows with non-ASCII bytes are set aside, not lost."""
    utf8 = parse_spec({"system": "magistrates", "format": "csv", "encoding": "utf-8",
                       "files": "*.csv", "tables": [{"name": "defendant_offences", "fields": [
                           {"source": f.source, "name": f.name} for f in spec.tables[0].fields]}]})
    f = write(tmp_path / "a.csv", [record(1), record(2, surname="GÓMEZ"), record(3)])
    batches = read_all(utf8, f)
    check_accounting(batches, 3)
    (rej,) = rejects_of(batches).to_pylist()
    assert rej["rule"] == "undecodable" and "G\\xd3MEZ" in rej["raw"]


def test_ragged_rows_are_rejected(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1), record(2) + ",extra", record(3)[:40], record(4)])
    batches = read_all(spec, f)
    check_accounting(batches, 4)
    rej = rejects_of(batches).to_pylist()
    assert [(r["rule"], r["_locator"]) for r in rej] == [("ragged_row", "line 3"),
                                                         ("ragged_row", "line 4")]
    assert rej[0]["raw"] == record(2) + ",extra"  # the raw text, without its line end
    assert "25 fields where the header has 24" in rej[0]["reason"]


def test_truncated_final_line_is_truncated_row(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1), record(2)[:50]], final_end=False)
    batches = read_all(spec, f)
    check_accounting(batches, 2)
    (rej,) = rejects_of(batches).to_pylist()
    assert (rej["rule"], rej["_locator"], rej["raw"]) == ("truncated_row", "line 3",
                                                          record(2)[:50])


def test_final_line_without_line_end_but_complete_is_a_row(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1), record(2)], final_end=False)
    batches = read_all(spec, f)
    assert rows_of(batches).num_rows == 2 and rejects_of(batches).num_rows == 0


def test_file_ending_inside_a_quote_is_truncated_row(tmp_path, spec) -> None:
    cut = record(2, wording='"Assault, common"')
    f = write(tmp_path / "a.csv", [record(1), cut[:cut.index("common") + 3]], final_end=False)
    batches = read_all(spec, f)
    check_accounting(batches, 2)
    assert rejects_of(batches)["rule"].to_pylist() == ["truncated_row"]


def test_enormous_field_is_rejected(tmp_path, spec) -> None:
    huge = "A" * (reader.MAX_FIELD_CHARS + 1)
    ok = "B" * reader.MAX_FIELD_CHARS
    f = write(tmp_path / "a.csv", [record(1), record(2, wording=huge), record(3, wording=ok)])
    batches = read_all(spec, f)
    check_accounting(batches, 3)
    assert rows_of(batches)["defendant_id"].to_pylist() == ["D000000001", "D000000003"]
    (rej,) = rejects_of(batches).to_pylist()
    assert rej["rule"] == "field_too_long" and rej["_locator"] == "line 3"
    assert "field 14" in rej["reason"] and len(rej["raw"]) > reader.MAX_FIELD_CHARS


def test_bare_carriage_return_is_malformed_row(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1), record(2, wording="Theft\rfrom a shop"), record(3)])
    batches = read_all(spec, f)
    check_accounting(batches, 3)
    assert rejects_of(batches)["rule"].to_pylist() == ["malformed_row"]
    assert rejects_of(batches)["_locator"].to_pylist() == ["line 3"]


def test_quoted_line_breaks_and_blank_lines_keep_line_numbers(tmp_path, spec) -> None:
    multi = record(2, wording='"Theft\r\nfrom a\r\nshop"')
    f = write(tmp_path / "a.csv", [record(1), multi, "", record(3), "", ""])
    batches = read_all(spec, f)
    check_accounting(batches, 3)
    rows = rows_of(batches)
    assert rows["_locator"].to_pylist() == ["line 2", "line 3", "line 7"]
    assert rows["offence_wording"].to_pylist()[1] == "Theft\r\nfrom a\r\nshop"


# ---------------------------------------------------------------------------------------------
# Whole-file problems
# ---------------------------------------------------------------------------------------------


def test_empty_file_is_a_source_error(tmp_path, spec) -> None:
    f = tmp_path / "libra_20200101.csv"
    f.write_bytes(b"")
    with pytest.raises(SourceError, match=r"libra_20200101\.csv is empty.*re-extract it or "
                                          r"remove it"):
        read_all(spec, f)


def test_blank_only_file_is_a_source_error(tmp_path, spec) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(b"\r\n\r\n")
    with pytest.raises(SourceError, match="no header line"):
        read_all(spec, f)


def test_header_only_file_gives_one_empty_batch(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [])
    (batch,) = read_all(spec, f)
    assert batch.rows.num_rows == 0 and batch.rejects.num_rows == 0
    assert batch.rows.column_names[:2] == ["case_number", "court_code"]
    f.write_bytes(HEADER.encode())  # no final line end either
    (batch,) = read_all(spec, f)
    assert batch.rows.num_rows == 0


def test_undecodable_header_is_a_source_error(tmp_path, spec) -> None:
    f = write(tmp_path / "a.csv", [record(1)], header=HEADER.encode().replace(b"Sex", b"S\x81x"))
    with pytest.raises(SourceError, match=r"line 1 \(the header\).*cp1252.*encoding"):
        read_all(spec, f)


def test_missing_file_and_binary_garbage(tmp_path, spec, monkeypatch) -> None:
    with pytest.raises(SourceError, match="cannot be opened"):
        read_all(spec, tmp_path / "nope.csv")
    f = tmp_path / "a.csv"
    f.write_bytes(HEADER.encode() + b"\r\n" + bytes(range(14, 256)) * 600)
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 100_000)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 10_000)
    with pytest.raises(SourceError, match="no line end within"):
        read_all(spec, f)


def test_utf8_bom_is_skipped(tmp_path) -> None:
    s = parse_spec({"system": "t", "format": "csv", "files": "*.csv", "encoding": "utf-8",
                    "tables": [{"name": "t", "fields": [{"source": "A", "name": "a",
                                                         "required": True}]}]})
    f = tmp_path / "t.csv"
    f.write_bytes(b"\xef\xbb\xbfA\n\xc3\xa9\n")
    assert rows_of(read_all(s, f))["a"].to_pylist() == ["é"]


# ---------------------------------------------------------------------------------------------
# Blocks and batches: the same answer whatever the block size
# ---------------------------------------------------------------------------------------------


def messy_file(path: Path, n: int, seed: int) -> tuple[Path, int]:
    """`n` records of every kind (good, quoted, multi-line, bad bytes, ragged, blank lines)."""
    rng = random.Random(seed)
    lines: list[str | bytes] = []
    records = 0
    for i in range(n):
        k = rng.random()
        if k < 0.6:
            lines.append(record(i))
        elif k < 0.7:
            lines.append(record(i, wording='"Assault, ""common"""'))
        elif k < 0.75:
            lines.append(record(i, wording='"Theft\r\nfrom\r\na shop"'))
        elif k < 0.8:
            lines.append(record(i).encode("cp1252").replace(b"SMITH", b"\x90\x9d"))
        elif k < 0.85:
            lines.append(record(i) + ",x")
        elif k < 0.9:
            lines.append("")
            records -= 1
        else:
            lines.append(record(i, surname="D\u2019ARCY"))
        records += 1
    return write(path, lines), records


def test_block_boundaries_do_not_change_the_result(tmp_path, spec, monkeypatch) -> None:
    """Fast path, halving and the careful path agree, wherever the blocks are cut."""
    f, n = messy_file(tmp_path / "a.csv", 2_000, seed=3)
    monkeypatch.setattr(reader, "SMALL_BLOCK_BYTES", 1 << 40)  # careful path only
    reference = read_all(spec, f)
    check_accounting(reference, n)
    assert len(reference) == 1
    for block, small in ((97, 1 << 40), (1_000, 0), (4_096, 512), (1 << 20, 0), (1 << 20, 16 << 10)):
        monkeypatch.setattr(reader, "BLOCK_BYTES", block)
        monkeypatch.setattr(reader, "MAX_BLOCK_BYTES", 4 * block)
        monkeypatch.setattr(reader, "SMALL_BLOCK_BYTES", small)
        got = read_all(spec, f)
        assert rows_of(got).equals(rows_of(reference)), (block, small)
        assert rejects_of(got).equals(rejects_of(reference)), (block, small)
    # and the rows agree with Python's csv module reading the whole file
    text = f.read_bytes().decode("cp1252", "replace")
    expected = list(pycsv.reader(io.StringIO(text, newline="")))[1:]
    expected = [r for r in expected if r and len(r) == 24 and "\ufffd" not in "".join(r)]
    assert rows_of(reference)["offence_wording"].to_pylist() == [r[13] for r in expected]
    assert set(rejects_of(reference)["rule"].to_pylist()) == {"undecodable", "ragged_row"}


def test_fast_path_sets_aside_only_the_bad_lines(tmp_path, spec, monkeypatch) -> None:
    """In a big block of one-line records, only the bad lines go to the careful path."""
    lines: list[str | bytes] = [record(i) for i in range(400)]
    lines[10] = record(10).encode("cp1252").replace(b"SMITH", b"SM\x9dTH")
    lines[20] = record(20) + ",extra"
    lines.append(record(400)[:30])  # cut short, no final line end
    f = write(tmp_path / "a.csv", lines, final_end=False)
    careful: list[int] = []
    slow = reader._parse_slow

    def spy(block, *args, **kw):
        careful.append(block.count(b"\n") + (not block.endswith(b"\n")))
        return slow(block, *args, **kw)

    monkeypatch.setattr(reader, "_parse_slow", spy)
    batches = read_all(spec, f)
    check_accounting(batches, 401)
    assert careful == [1, 1, 1]  # one line each
    rej = rejects_of(batches).to_pylist()
    assert [(r["rule"], r["_locator"]) for r in rej] == [
        ("undecodable", "line 12"), ("ragged_row", "line 22"), ("truncated_row", "line 402")]
    assert rows_of(batches)["_locator"].to_pylist()[10:12] == ["line 13", "line 14"]


def test_batches_are_bounded(tmp_path, spec, monkeypatch) -> None:
    f, n = messy_file(tmp_path / "a.csv", 3_000, seed=4)
    clean = write(tmp_path / "b.csv", [record(i) for i in range(1_234)])
    monkeypatch.setattr(reader, "BLOCK_BYTES", 8_192)
    s = parse_spec({"system": "magistrates", "format": "csv", "encoding": "cp1252",
                    "files": "*.csv", "options": {"chunk_rows": 500},
                    "tables": [{"name": "defendant_offences", "fields": [
                        {"source": fs.source, "name": fs.name} for fs in spec.tables[0].fields]}]})
    batches = read_all(s, f)
    check_accounting(batches, n)
    assert len(batches) > 4
    assert max(b.rows.num_rows for b in batches) <= 500
    assert rows_of(batches).equals(rows_of(read_all(spec, f)).select(
        rows_of(batches).column_names))
    assert rejects_of(batches).equals(rejects_of(read_all(spec, f)))
    assert [b.rows.num_rows for b in read_all(s, clean)] == [500, 500, 234]


@pytest.mark.slow
def test_a_million_rows_stream_in_bounded_memory(small_truth, spec, tmp_path) -> None:
    """1,000,000 magistrates' rows (~200 MB) in batches of 100,000 and flat memory."""
    root = small_truth[0] / "legacy" / "magistrates"
    body = b"".join(f.read_bytes().split(b"\n", 1)[1] for f in sorted(root.glob(spec.files)))
    lines = body.splitlines(keepends=True)
    path = tmp_path / "libra_huge.csv"
    with open(path, "wb") as out:
        out.write(HEADER.encode() + b"\r\n")
        out.writelines(body for _ in range(1_000_000 // len(lines)))
        out.write(b"".join(lines[:1_000_000 % len(lines)]))
    code = (
        "import resource, time\n"
        "from justice.sources.spec import load_spec\n"
        "from justice.sources.reading import Lineage\n"
        "from justice.sources.readers.csv import read\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024\n"
        f"spec = load_spec({str(MAGISTRATES)!r})\n"
        "t = time.perf_counter(); n = 0; most = 0; first = 0\n"
        f"for b in read(spec, {str(path)!r}, Lineage('l', 't')):\n"
        "    n += b.rows.num_rows; most = max(most, b.rows.num_rows); first = first or rss()\n"
        "dt = time.perf_counter() - t\n"
        "print(n, most, first, rss(), int(n / dt))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    n, most, first_mb, peak_mb, rate = map(int, out.stdout.split())
    print(f"\n{n:,} rows from {path.stat().st_size / 1e6:.0f} MB: peak RSS {peak_mb} MB "
          f"({first_mb} MB at the first batch), {rate:,} rows/s")
    assert n == 1_000_000 and most == 100_000
    assert peak_mb - first_mb < 150  # flat after the first batch: bounded, not growing
    assert peak_mb < 600  # all the rows at once would take well over a gigabyte
