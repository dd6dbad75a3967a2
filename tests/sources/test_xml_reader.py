"""Tests for justice.sources.readers.xml with the crown (XHIBIT-like) spec: the whole simulated
system against the answer key, parent keys, exact values, and every failure mode on small
hand-made files."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from lxml import etree

from justice.errors import SchemaDriftError, SourceError
from justice.sources.readers.xml import read
from justice.sources.reading import REJECT_SCHEMA, Lineage
from justice.sources.spec import LINEAGE_COLUMNS, builtin_spec_dir, load_spec, parse_spec

NS = "urn:justice-sim:xhibit:1"
LINEAGE = Lineage(load_id="load-1", extracted_at="2026-01-01T00:00:00")
TABLE_PATHS = {
    "case_messages": "CaseMessage",
    "defendants": "CaseMessage/Case/Defendants/Defendant",
    "offences": "CaseMessage/Case/Defendants/Defendant/Offences/Offence",
    "outcomes": "CaseMessage/Case/Defendants/Defendant/Outcomes/Outcome",
    "hearings": "CaseMessage/Case/Hearings/Hearing",
}


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec():
    return load_spec(builtin_spec_dir() / "crown.yaml")


@pytest.fixture(scope="module")
def crown_world(tmp_path_factory):
    """The simulated world (persons=2000, seed=1): (crown folder, truth folder)."""
    from justice.sim.params import SimulationParams
    from justice.sim.world import simulate_to

    out = tmp_path_factory.mktemp("crown_world")
    simulate_to(SimulationParams(persons=2000, seed=1), out)
    return out / "legacy" / "crown", out / "truth"


def read_file(spec, path: Path, relative_name: str | None = None):
    """{table: (rows, rejects, new columns)} for one file, batches concatenated."""
    batches = list(read(spec, str(path), LINEAGE, relative_name=relative_name))
    out = {}
    for table in {b.table for b in batches}:
        mine = [b for b in batches if b.table == table]
        rows = pa.concat_tables([b.rows for b in mine], promote_options="default")
        rejects = pa.concat_tables([b.rejects for b in mine])
        out[table] = (rows, rejects, {c for b in mine for c in b.new_columns})
    return out


@pytest.fixture(scope="module")
def whole(spec, crown_world):
    """Every crown file read: {table: (rows, rejects)}, plus element counts per table."""
    folder, _ = crown_world
    rows: dict[str, list] = {t: [] for t in TABLE_PATHS}
    rejects: dict[str, list] = {t: [] for t in TABLE_PATHS}
    elements = Counter()
    files = sorted(folder.glob("**/xhibit_*.xml"))
    for path in files:
        for b in read(spec, str(path), LINEAGE, relative_name=str(path.relative_to(folder))):
            rows[b.table].append(b.rows)
            rejects[b.table].append(b.rejects)
        doc = etree.parse(str(path)).getroot()
        for table, xpath in TABLE_PATHS.items():
            elements[table] += len(doc.xpath(
                "/x:CaseMessages/" + "/".join(f"x:{s}" for s in xpath.split("/")),
                namespaces={"x": NS}))
    return ({t: pa.concat_tables(v) for t, v in rows.items()},
            {t: pa.concat_tables(v) for t, v in rejects.items()}, elements, files)


MESSAGE = (
    '<CaseMessage MessageID="{id}" MessageType="NEW"><Case><CaseNumber>T2020{n:04d}</CaseNumber>'
    "<CourtCode>401</CourtCode><CourtName>Some Crown Court</CourtName><CaseType>TRIAL</CaseType>"
    "<ReceiptDate>2020-01-02</ReceiptDate><CaseStatus>OPEN</CaseStatus><Defendants><Defendant>"
    "<DefendantID>{did}</DefendantID><PersonalDetails>{surname}<Forename1>Ann</Forename1>"
    "<DateOfBirth>1990-02-31</DateOfBirth><Gender>{gender}</Gender>{extra_pd}</PersonalDetails>"
    "<CustodyStatus>ON BAIL</CustodyStatus><Offences><Offence><OffenceSeq>1</OffenceSeq>"
    "<OffenceCode>TH04002</OffenceCode><OffenceWording>Burglary &amp; theft</OffenceWording>"
    "<OffenceStartDate>2019-10-30</OffenceStartDate></Offence><Offence><OffenceSeq>2"
    "</OffenceSeq><OffenceCode>VA01007</OffenceCode><OffenceWording>Harassment</OffenceWording>"
    "<OffenceStartDate>2019-11-01</OffenceStartDate></Offence></Offences></Defendant>"
    "</Defendants><Hearings><Hearing><HearingDate>2020-01-02</HearingDate><HearingType>PTPH"
    "</HearingType></Hearing></Hearings>{extra_case}</Case></CaseMessage>\n"
)


def message(n: int, *, surname: str = "<Surname> Smith </Surname>", gender: str = "2",
            extra_pd: str = "", extra_case: str = "", did: str | None = None) -> str:
    return MESSAGE.format(id=f"20200102-{n:06d}", n=n, did=did or f"{10000000 + n}",
                          surname=surname, gender=gender, extra_pd=extra_pd, extra_case=extra_case)


def document(*messages: str, root_attrs: str = "", ns: str = NS, root: str = "CaseMessages",
             tail: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{ns}" '
            f'MessageDate="2020-01-02" Source="XHIBIT"{root_attrs}>\n'
            + "".join(messages) + tail + f"</{root}>\n")


def write(tmp_path: Path, text: str | bytes, name: str = "xhibit_20200102.xml") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def with_options(spec, **options):
    """The crown spec with options changed (parsed afresh, as from a YAML file)."""
    data = yaml.safe_load(Path(spec.path).read_text("utf-8"))
    data["options"] = {**data.get("options", {}), **options}
    return parse_spec(data, spec.path)


# --- the whole simulated system -------------------------------------------------------------


def test_spec_declares_every_element_of_the_xsd(spec):
    """Every leaf element and attribute the emitter's schema defines is a declared field."""
    from justice.sim.legacy.crown import XSD_PATH

    xsd = etree.parse(str(XSD_PATH))
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    complex_types = {c.get("name") for c in xsd.xpath("//xs:complexType[@name]", namespaces=xs)}
    leaves = {e.get("name") for e in xsd.xpath("//xs:element[@type or xs:simpleType]",
                                               namespaces=xs)
              if e.get("type") not in complex_types}
    attrs = {a.get("name") for a in xsd.xpath("//xs:attribute", namespaces=xs)}
    declared = {f.source.rsplit("/", 1)[-1].lstrip("@") for t in spec.tables for f in t.fields}
    assert leaves | attrs <= declared
    assert {t.name for t in spec.tables} == set(TABLE_PATHS)
    assert {t.name: t.source for t in spec.tables} == TABLE_PATHS


def test_whole_system_defendant_ids_match_truth(whole, crown_world):
    rows, rejects, _, _ = whole
    truth = pq.read_table(crown_world[1] / "records.parquet")
    truth = truth.filter(pc.equal(truth["system"], "crown"))
    ids = set(rows["defendants"]["defendant_id"].to_pylist())
    assert ids == set(truth["record_id"].to_pylist())
    assert all(r.num_rows == 0 for r in rejects.values())


def test_whole_system_rows_read_equal_rows_plus_rejects(whole):
    rows, rejects, elements, files = whole
    for table in TABLE_PATHS:
        assert rows[table].num_rows + rejects[table].num_rows == elements[table], table
    assert rows["case_messages"].num_rows > 500
    assert rows["outcomes"].num_rows > 0 and rows["hearings"].num_rows > 0
    assert len(set(rows["case_messages"]["_file"].to_pylist())) == len(files)


def test_whole_system_columns_lineage_and_locators(whole, spec):
    rows, _, _, _ = whole
    for t in spec.tables:
        table = rows[t.name]
        assert table.column_names == [*t.parent_key, *(f.name for f in t.fields),
                                      *LINEAGE_COLUMNS]
        assert all(table.schema.field(c).type == pa.string() for c in table.column_names)
        assert set(table["_table"].to_pylist()) == {t.name}
        assert set(table["_system"].to_pylist()) == {"crown"}
        assert set(table["_load_id"].to_pylist()) == {"load-1"}
        files = table["_file"].to_pylist()
        assert all(f.startswith("20") and f.endswith(".xml") and "/" in f for f in files)
        locs = table["_locator"].to_pylist()
        assert len(set(zip(files, locs, strict=True))) == len(locs)  # unique within a file
    loc = rows["offences"]["_locator"][0].as_py()
    assert loc.startswith("/CaseMessages/CaseMessage[")
    assert "]/Case/Defendants/Defendant[1]/Offences/Offence[1]" in loc


def test_parent_keys_link_children_to_parents(whole):
    rows, _, _, _ = whole

    def keys(table, names):
        t = rows[table]
        return set(zip(*(t[c].to_pylist() for c in ["_file", *names]), strict=True))

    messages = keys("case_messages", ["message_id", "court_code", "case_number"])
    assert keys("defendants", ["message_id", "court_code", "case_number"]) <= messages
    assert keys("hearings", ["message_id", "court_code", "case_number"]) <= messages
    defendants = keys("defendants", ["message_id", "defendant_id"])
    assert keys("offences", ["message_id", "defendant_id"]) <= defendants
    assert keys("outcomes", ["message_id", "defendant_id"]) <= defendants
    # ...and the locators agree: a child's locator extends its parent's.
    parent_locs = {}  # a duplicated message has two locators
    d = rows["defendants"]
    for f, m, loc in zip(d["_file"].to_pylist(), d["message_id"].to_pylist(),
                         d["_locator"].to_pylist(), strict=True):
        parent_locs.setdefault((f, m), []).append(loc)
    off = rows["offences"]
    for f, m, loc in zip(off["_file"].to_pylist(), off["message_id"].to_pylist(),
                         off["_locator"].to_pylist(), strict=True):
        assert any(loc.startswith(p + "/Offences/Offence[") for p in parent_locs[(f, m)])


def test_values_are_the_exact_element_text(spec, crown_world):
    folder, _ = crown_world
    path = max(folder.glob("**/*.xml"), key=lambda p: p.stat().st_size)
    got = read_file(spec, path)["defendants"][0]
    doc = etree.parse(str(path))
    want = []
    for d in doc.iterfind(f".//{{{NS}}}Defendant"):
        def text(p, d=d):
            e = d.find("/".join(f"{{{NS}}}{s}" for s in p.split("/")))
            return None if e is None else (e.text or "")
        want.append({f.name: text(f.source) for f in spec.table("defendants").fields})
    assert got.select([f.name for f in spec.table("defendants").fields]).to_pylist() == want


def test_mess_is_kept_as_sent(whole, crown_world):
    """Whitespace, impossible dates and byte-for-byte duplicate messages all land as sent."""
    rows, _, _, _ = whole
    truth = pq.read_table(crown_world[1] / "records.parquet").to_pylist()
    mess = {r["record_id"]: r["mess"].split(",") for r in truth if r["system"] == "crown"}
    d = rows["defendants"].to_pylist()
    spaced = {r["defendant_id"] for r in d if r["surname"] != r["surname"].strip()}
    assert {k for k, m in mess.items() if "whitespace" in m} <= spaced
    # duplicate_row: one of the record's messages twice in the same file, identical but for
    # its locator; the reader keeps both.
    seen = Counter((r["_file"], r["message_id"], r["defendant_id"]) for r in d)
    duplicated = {k[2] for k, n in seen.items() if n > 1}
    assert duplicated == {k for k, m in mess.items() if "duplicate_row" in m}
    def impossible(value):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return True
        return False

    bad = {r["defendant_id"] for r in d if r["date_of_birth"] and impossible(r["date_of_birth"])}
    o = rows["offences"]
    bad |= {i for i, v in zip(o["defendant_id"].to_pylist(), o["offence_start_date"].to_pylist(),
                              strict=True) if impossible(v)}
    assert bad == {k for k, m in mess.items() if "invalid_date" in m}


def test_optional_elements_absent_are_null(whole):
    rows, _, _, _ = whole
    d = rows["defendants"]
    assert d["pnc_id"].null_count > 0 and d["cro_number"].null_count > 0
    assert d["defendant_id"].null_count == 0
    assert rows["case_messages"]["message_date"].null_count == 0


# --- small hand-made files: values, new columns, rejects ------------------------------------


def test_small_file_values_and_empty_versus_absent(spec, tmp_path):
    path = write(tmp_path, document(
        message(1), message(2, surname="<Surname></Surname>"), message(3, surname="<Surname/>")))
    got = read_file(spec, path, relative_name="2020-01/xhibit_20200102.xml")
    d = got["defendants"][0].to_pylist()
    assert [r["surname"] for r in d] == [" Smith ", "", ""]
    assert d[0]["forename_2"] is None and d[0]["date_of_birth"] == "1990-02-31"
    assert d[0]["message_id"] == "20200102-000001" and d[0]["case_number"] == "T20200001"
    assert d[0]["_file"] == "2020-01/xhibit_20200102.xml"
    assert d[1]["_locator"] == "/CaseMessages/CaseMessage[2]/Case/Defendants/Defendant[1]"
    o = got["offences"][0].to_pylist()
    assert len(o) == 6 and o[0]["offence_wording"] == "Burglary & theft"
    assert o[1]["_locator"].endswith("CaseMessage[1]/Case/Defendants/Defendant[1]/Offences/"
                                     "Offence[2]")
    m = got["case_messages"][0].to_pylist()
    assert m[0]["message_date"] == "2020-01-02" and m[0]["message_source"] == "XHIBIT"
    assert m[2]["_locator"] == "/CaseMessages/CaseMessage[3]"
    # No outcomes in the file: the table still comes, empty, with its columns.
    out_rows, out_rejects, _ = got["outcomes"]
    assert out_rows.num_rows == 0 and "verdict" in out_rows.column_names
    assert out_rejects.schema == REJECT_SCHEMA


def test_without_relative_name_the_location_is_the_file(spec, tmp_path):
    path = write(tmp_path, document(message(1)))
    rows = read_file(spec, path)["case_messages"][0]
    assert rows["_file"].to_pylist() == [str(path)]


def test_new_elements_and_attributes_are_kept_as_x_columns(spec, tmp_path):
    path = write(tmp_path, document(
        message(1, extra_pd='<MiddleName Verified="Y">Jo</MiddleName>',
                extra_case="<Judge><Name>HHJ Smith</Name></Judge>"),
        message(2), root_attrs=' BatchNo="7"'))
    got = read_file(spec, path)
    d_rows, d_rejects, d_new = got["defendants"]
    assert d_rejects.num_rows == 0
    assert d_new == {"x_personal_details_middle_name", "x_personal_details_middle_name_verified"}
    assert d_rows["x_personal_details_middle_name"].to_pylist() == ["Jo", None]
    assert d_rows["x_personal_details_middle_name_verified"].to_pylist() == ["Y", None]
    assert d_rows.column_names[-len(LINEAGE_COLUMNS):] == list(LINEAGE_COLUMNS)
    m_rows, _, m_new = got["case_messages"]
    assert m_new == {"x_case_judge_name", "x_case_messages_batch_no"}
    assert m_rows["x_case_judge_name"].to_pylist() == ["HHJ Smith", None]
    assert m_rows["x_case_messages_batch_no"].to_pylist() == ["7", "7"]


def test_required_element_missing_in_one_message_is_a_reject(spec, tmp_path):
    broken = message(2).replace("<DefendantID>10000002</DefendantID>", "")
    path = write(tmp_path, document(message(1), broken, message(3)))
    got = read_file(spec, path)
    rows, rejects, _ = got["defendants"]
    assert rows["defendant_id"].to_pylist() == ["10000001", "10000003"]
    assert rejects.num_rows == 1
    r = rejects.to_pylist()[0]
    assert r["rule"] == "required_missing" and "DefendantID" in r["reason"]
    assert r["_locator"] == "/CaseMessages/CaseMessage[2]/Case/Defendants/Defendant[1]"
    assert r["raw"].startswith("<Defendant") and "<Surname> Smith </Surname>" in r["raw"]
    # The rejected defendant's offences are inside its raw, not rows of their own.
    assert got["offences"][0].num_rows == 4 and got["offences"][1].num_rows == 0
    assert got["case_messages"][0].num_rows == 3


def test_required_element_missing_everywhere_is_schema_drift(spec, tmp_path):
    msgs = [message(n).replace("<CourtCode>401</CourtCode>", "<Court>401</Court>")
            for n in (1, 2)]
    path = write(tmp_path, document(*msgs))
    with pytest.raises(SchemaDriftError) as err:
        read_file(spec, path)
    text = str(err.value)
    assert str(path) in text and "Case/CourtCode" in text and "update the spec" in text


def test_enormous_field_is_a_reject(spec, tmp_path):
    huge = "<Surname>" + "A" * 1_000_001 + "</Surname>"
    path = write(tmp_path, document(message(1), message(2, surname=huge), message(3)))
    rows, rejects, _ = read_file(spec, path)["defendants"]
    assert rows.num_rows == 2 and rejects.num_rows == 1
    r = rejects.to_pylist()[0]
    assert r["rule"] == "field_too_long" and "surname" in r["reason"]
    assert len(r["raw"]) > 1_000_001  # nothing lost


def test_repeated_declared_element_is_a_reject(spec, tmp_path):
    twice = "<Surname>Smith</Surname><Surname>Jones</Surname>"
    path = write(tmp_path, document(message(1, surname=twice), message(2)))
    rows, rejects, _ = read_file(spec, path)["defendants"]
    assert rows.num_rows == 1 and rejects["rule"].to_pylist() == ["repeated_element"]


def test_repeated_leaf_reason_and_a_declared_leaf_with_attributes_and_children(spec, tmp_path):
    twice = "<Surname>Smith</Surname><Gender>1</Gender>"
    marked = '<Surname Verified="Y">Jones<Note>alias</Note></Surname>'
    path = write(tmp_path, document(message(1, surname=marked), message(2, surname="", gender="1"),
                                    message(3, extra_pd=twice)))
    rows, rejects, new = read_file(spec, path)["defendants"]
    # The declared leaf keeps its own text; its attribute and child element are new columns.
    assert rows["surname"].to_pylist() == ["Jones", None]
    assert rows["gender"].to_pylist() == ["2", "1"]
    assert new == {"x_personal_details_surname_verified", "x_personal_details_surname_note"}
    assert rows["x_personal_details_surname_verified"].to_pylist() == ["Y", None]
    assert rows["x_personal_details_surname_note"].to_pylist() == ["alias", None]
    r = rejects.to_pylist()
    assert [(x["_locator"], x["rule"]) for x in r] == [
        ("/CaseMessages/CaseMessage[3]/Case/Defendants/Defendant[1]", "repeated_element")]
    assert r[0]["reason"] == ("<Defendant>: <Surname> (surname) occurs more than once; "
                              "<Gender> (gender) occurs more than once")


def test_undeclared_element_beside_the_records_is_a_reject(spec, tmp_path):
    path = write(tmp_path, document(message(1), "<Trailer><Count>2</Count></Trailer>\n",
                                    message(2), tail="<Checksum>abc</Checksum>\n"))
    rows, rejects, _ = read_file(spec, path)["case_messages"]
    assert rows.num_rows == 2
    assert rejects["rule"].to_pylist() == ["undeclared_element"] * 2
    assert "<Count>2</Count>" in rejects["raw"][0].as_py()
    assert rejects["_locator"].to_pylist() == ["/CaseMessages/Trailer", "/CaseMessages/Checksum"]


def test_comments_and_processing_instructions_are_ignored(spec, tmp_path):
    path = write(tmp_path, document("<!-- nightly -->\n", message(1), "<?pi x?>\n", message(2)))
    got = read_file(spec, path)
    assert got["case_messages"][0].num_rows == 2
    assert got["case_messages"][1].num_rows == 0


def test_root_without_records_yields_empty_tables(spec, tmp_path):
    path = write(tmp_path, document())
    got = read_file(spec, path)
    assert set(got) == set(TABLE_PATHS)
    assert all(rows.num_rows == 0 and rej.num_rows == 0 for rows, rej, _ in got.values())


def test_chunking_gives_the_same_rows(spec, tmp_path):
    path = write(tmp_path, document(*(message(n) for n in range(1, 41))))
    small = with_options(spec, chunk_rows=7)
    batches = list(read(small, str(path), LINEAGE))
    assert Counter(b.table for b in batches)["offences"] > 3
    assert all(b.rows.num_rows <= 7 + 4 for b in batches)  # a record adds at most 4 rows
    whole = read_file(spec, path)
    for table, (rows, _, _) in whole.items():
        chunked = pa.concat_tables([b.rows for b in batches if b.table == table])
        assert chunked.equals(rows), table


GENERIC = {
    "system": "feed", "format": "xml", "files": "*.xml", "options": {"root": "Feed"},
    "tables": [  # children first: the order of tables does not matter
        {"name": "lines", "source": "Batch/Item/Line", "parent_key": ["batch_no", "item_id"],
         "fields": [{"source": "@n", "name": "line_no", "required": True},
                    {"source": "Text", "name": "text"}]},
        {"name": "items", "source": "Batch/Item", "parent_key": ["batch_no"],
         "fields": [{"source": "@id", "name": "item_id", "required": True},
                    {"source": "/Feed/@day", "name": "day"}]},
        {"name": "batches", "source": "Batch",
         "fields": [{"source": "@no", "name": "batch_no", "required": True}]},
    ],
}


def test_a_generic_spec_without_namespace_and_with_deeper_records(tmp_path):
    spec = parse_spec(GENERIC, "feed.yaml")
    path = write(tmp_path, '<Feed day="Mon"><Batch no="1"><Item id="a"><Line n="1"><Text>x'
                           '</Text></Line><Line n="2"/></Item></Batch><Batch no="2"><Item id="b"/>'
                           '<Item id="c"><Line n="1"><Text>y</Text></Line></Item></Batch></Feed>')
    got = read_file(spec, path)
    assert got["batches"][0]["batch_no"].to_pylist() == ["1", "2"]
    items = got["items"][0]
    assert items.select(["batch_no", "item_id", "day"]).to_pylist() == [
        {"batch_no": "1", "item_id": "a", "day": "Mon"},
        {"batch_no": "2", "item_id": "b", "day": "Mon"},
        {"batch_no": "2", "item_id": "c", "day": "Mon"}]
    assert items["_locator"][2].as_py() == "/Feed/Batch[2]/Item[2]"
    lines = got["lines"][0]
    assert lines.select(["batch_no", "item_id", "line_no", "text"]).to_pylist() == [
        {"batch_no": "1", "item_id": "a", "line_no": "1", "text": "x"},
        {"batch_no": "1", "item_id": "a", "line_no": "2", "text": None},
        {"batch_no": "2", "item_id": "c", "line_no": "1", "text": "y"}]
    assert lines["_locator"][1].as_py() == "/Feed/Batch[1]/Item[1]/Line[2]"


@pytest.mark.parametrize("change, words", [
    (lambda d: d["tables"][1].update(parent_key=["nope"]), "parent_key 'nope'"),
    (lambda d: d["tables"][2].update(source=None), "needs source"),
    (lambda d: d["tables"][0]["fields"][1].update(source="Text[1]"), "not an element path"),
    (lambda d: d["tables"][1]["fields"][1].update(source="/Other/@day"), "absolute source"),
    (lambda d: d["tables"][2]["fields"].append({"source": "Item/@id", "name": "x"}),
     "reaches into"),
])
def test_bad_xml_specs_are_config_errors(tmp_path, change, words):
    import copy

    from justice.errors import ConfigError

    data = copy.deepcopy(GENERIC)
    change(data)
    spec = parse_spec(data, "feed.yaml")
    path = write(tmp_path, '<Feed day="Mon"><Batch no="1"/></Feed>')
    with pytest.raises(ConfigError, match="feed.yaml") as err:
        list(read(spec, str(path), LINEAGE))
    assert words in str(err.value)


# --- whole-file failures --------------------------------------------------------------------


def first_batches(spec, path: Path) -> tuple[list, Exception | None]:
    """Batches yielded before the reader raised, and what it raised."""
    got: list = []
    try:
        got.extend(read(spec, str(path), LINEAGE))
    except SourceError as exc:
        return got, exc
    return got, None


def test_truncated_file_raises_before_anything_is_yielded(spec, tmp_path):
    text = document(*(message(n) for n in range(1, 201)))
    path = write(tmp_path, text[: len(text) * 2 // 3])
    spec = with_options(spec, chunk_rows=10)  # batches would be due long before the cut
    got, exc = first_batches(spec, path)
    assert got == [] and exc is not None
    msg = str(exc)
    assert str(path) in msg and "line" in msg and "column" in msg and "re-extract" in msg
    assert not isinstance(exc, SchemaDriftError)


def test_without_check_first_a_truncated_file_raises_midway(spec, tmp_path):
    """The documented contract: batches are a unit; commit only on a clean finish."""
    text = document(*(message(n) for n in range(1, 201)))
    path = write(tmp_path, text[: len(text) * 2 // 3])
    got, exc = first_batches(with_options(spec, chunk_rows=10, check_first=False), path)
    assert got and isinstance(exc, SourceError) and "re-extract" in str(exc)


@pytest.mark.parametrize("content, words", [
    (b"", ["empty"]),
    (b"   \n\n", ["empty"]),
    (bytes(range(256)) * 4, ["not well-formed", "line 1"]),
    (b"Case No.,Court Code\nLB1,2\n", ["not well-formed", "line 1", "column"]),
    (b'<?xml version="1.0"?>\n', ["not well-formed"]),
])
def test_not_xml_at_all_raises(spec, tmp_path, content, words):
    path = write(tmp_path, content)
    with pytest.raises(SourceError) as err:
        list(read(spec, str(path), LINEAGE))
    msg = str(err.value)
    assert str(path) in msg and "re-extract" in msg
    for w in words:
        assert w in msg


def test_bytes_not_in_the_encoding_raise_with_their_line(spec, tmp_path):
    text = document(message(1), message(2), message(3)).encode("utf-8")
    text = text.replace(b"<Surname> Smith </Surname>", b"<Surname>M\xfcller</Surname>", 1)
    path = write(tmp_path, text)
    with pytest.raises(SourceError) as err:
        list(read(spec, str(path), LINEAGE))
    assert "line 3" in str(err.value) and "re-extract" in str(err.value)


def test_garbage_in_the_middle_raises(spec, tmp_path):
    text = document(message(1), "<CaseMessage <<< garbage \x01 >\n", message(2))
    path = write(tmp_path, text)
    with pytest.raises(SourceError, match="line 4"):
        list(read(spec, str(path), LINEAGE))


@pytest.mark.parametrize("kw, words", [
    ({"ns": "urn:somebody-else:1"}, ["urn:somebody-else:1", "namespace"]),
    ({"root": "Messages"}, ["<Messages>", "expects <CaseMessages>"]),
])
def test_wrong_root_or_namespace_raises(spec, tmp_path, kw, words):
    path = write(tmp_path, document(message(1), **kw))
    with pytest.raises(SourceError) as err:
        list(read(spec, str(path), LINEAGE))
    msg = str(err.value)
    assert "not a crown file" in msg and "update the spec" in msg
    for w in words:
        assert w in msg


def test_missing_file_raises(spec, tmp_path):
    with pytest.raises(SourceError, match="cannot be read"):
        list(read(spec, str(tmp_path / "nope.xml"), LINEAGE))


# --- schema validation ----------------------------------------------------------------------


def test_schema_validation_rejects_invalid_messages(spec, tmp_path):
    checked = with_options(spec, schema="justice.sim.legacy:crown.xsd")
    path = write(tmp_path, document(message(1), message(2, gender="9"), message(3)))
    rows, rejects, _ = read_file(checked, path)["case_messages"]
    assert rows["message_id"].to_pylist() == ["20200102-000001", "20200102-000003"]
    r = rejects.to_pylist()[0]
    assert r["rule"] == "schema_invalid" and "Gender" in r["reason"]
    assert r["_locator"] == "/CaseMessages/CaseMessage[2]"
    assert r["raw"].startswith("<CaseMessage")
    # Impossible but well-shaped dates are schema-valid (LooseDate), as in the real feed.
    assert read_file(checked, path)["defendants"][0]["date_of_birth"][0].as_py() == "1990-02-31"


def test_schema_given_relative_to_the_spec(spec, tmp_path):
    from justice.sim.legacy.crown import XSD_PATH

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "crown.xsd").write_bytes(XSD_PATH.read_bytes())
    data = yaml.safe_load(Path(spec.path).read_text("utf-8"))
    data["options"]["schema"] = "crown.xsd"
    checked = parse_spec(data, str(tmp_path / "specs" / "crown.yaml"))
    path = write(tmp_path, document(message(1), message(2, extra_pd="<Nickname>J</Nickname>")))
    rows, rejects, _ = read_file(checked, path)["case_messages"]
    assert rows.num_rows == 1 and rejects["rule"].to_pylist() == ["schema_invalid"]


def test_whole_system_is_schema_valid(spec, crown_world):
    checked = with_options(spec, schema="justice.sim.legacy:crown.xsd")
    folder, _ = crown_world
    for path in sorted(folder.glob("**/*.xml"))[::20]:
        for b in read(checked, str(path), LINEAGE):
            assert b.rejects.num_rows == 0, b.rejects.to_pylist()


# --- throughput and memory ------------------------------------------------------------------


def big_file(crown_folder: Path, out: Path, messages: int) -> Path:
    """A single file of `messages` real crown messages (renumbered), written streaming."""
    lines = [line for p in sorted(crown_folder.glob("**/*.xml"))
             for line in p.read_text("utf-8").splitlines(keepends=True)
             if line.startswith("<CaseMessage ")]
    with out.open("w", encoding="utf-8") as fh:
        fh.write(document().split("</CaseMessages>")[0])
        for i in range(messages):
            fh.write(lines[i % len(lines)].replace('MessageID="', f'MessageID="{i}-', 1))
        fh.write("</CaseMessages>\n")
    return out


def test_throughput(spec, crown_world, tmp_path):
    path = big_file(crown_world[0], tmp_path / "xhibit_big.xml", 5_000)
    start = time.perf_counter()
    n = sum(b.rows.num_rows for b in read(spec, str(path), LINEAGE))
    rate = n / (time.perf_counter() - start)
    mb = path.stat().st_size / 1e6
    print(f"\ncrown XML reader: {n:,} rows in {mb:.1f} MB, {rate:,.0f} rows/s")
    assert n > 30_000 and rate > 2_000


@pytest.mark.slow
def test_a_million_rows_stream_in_bounded_memory(spec, crown_world, tmp_path):
    path = big_file(crown_world[0], tmp_path / "xhibit_huge.xml", 150_000)  # ~1.07M rows, ~280 MB
    code = (
        "import resource, sys, time\n"
        "from justice.sources.spec import load_spec\n"
        "from justice.sources.reading import Lineage\n"
        "from justice.sources.readers.xml import read\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024\n"
        f"spec = load_spec({str(spec.path)!r})\n"
        # pyarrow imports pandas on first use when it is installed: count it in the baseline.
        "import pyarrow as pa; pa.array(['x']); base = rss()\n"
        "t = time.perf_counter(); n = 0; most = 0; first = 0\n"
        f"for b in read(spec, {str(path)!r}, Lineage('l', 't')):\n"
        "    n += b.rows.num_rows; most = max(most, b.rows.num_rows); first = first or rss()\n"
        "dt = time.perf_counter() - t\n"
        "print(n, most, base, first, rss(), int(n / dt))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    n, most, base_mb, first_mb, peak_mb, rate = map(int, out.stdout.split())
    print(f"\n{n:,} rows from {path.stat().st_size / 1e6:.0f} MB: peak RSS {peak_mb} MB "
          f"({base_mb} MB after imports, {first_mb} MB at the first batch), {rate:,} rows/s")
    assert n >= 1_000_000 and most <= 100_000 + 50
    assert peak_mb - first_mb < 100  # flat after the first batch: bounded, not growing
    # Holding the file's tree, or all its rows, would take far more than one batch's working set.
    assert peak_mb - base_mb < 450
