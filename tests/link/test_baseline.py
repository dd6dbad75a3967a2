"""The deterministic baseline (shared identifier or exact name and date of birth, closed
transitively) on hand-made records, and beside the model in the quality report."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from justice.link.baseline import baseline
from justice.link.report import model_and_baseline, pairwise_from_labels, write_report

# unique_id, forename, surname, dob, pnc, cro, prison_number, true person, model's person
RECORDS = [
    ("a:1", "john", "smith", "1980-02-01", "2001/0000001A", None, None, "P1", "M1"),
    ("b:1", "john", "smith", "1980-02-01", None, None, None, "P1", "M1"),       # a by name and dob
    ("c:1", "jon", "smyth", "1980-02-01", "2001/0000001A", None, None, "P1", "M1"),  # a by PNC only
    ("d:1", "john", "smith", "1981-02-01", None, None, None, "P2", "M2"),       # other dob: alone
    ("e:1", "mary", "jones", None, None, None, "A1234BC", "P3", "M3"),
    ("f:1", "maria", "jones", "1990-05-05", None, None, "A1234BC", "P3", "M3"),  # e by prison number
    ("g:1", "ann", "lee", None, None, None, None, "P4", "M4"),
    ("h:1", "ann", "lee", None, None, None, None, "P5", "M4"),                  # no dob: not linked
    ("i:1", "bob", "king", "1970-01-01", None, "012345/99X", None, "P6", "M5"),
    ("j:1", "rob", "king", "1970-01-01", None, "012345/99X", None, "P6", "M5"),  # i by CRO
    ("k:1", "zoe", "west", "1999-09-09", None, None, None, "P7", "M6"),
]


@pytest.fixture()
def con(tmp_path):
    c = duckdb.connect()
    c.execute("create schema linkage")
    c.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
                 forename varchar, surname varchar, dob date, pnc varchar, cro varchar, prison_number varchar)""")
    c.executemany("insert into linkage.records values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [[r[0], *r[0].split(":"), *r[1:7]] for r in RECORDS])
    c.execute("create table linkage.person_links (unique_id varchar, person_id varchar)")
    c.executemany("insert into linkage.person_links values (?, ?)", [[r[0], r[8]] for r in RECORDS])
    truth = tmp_path / "truth"
    truth.mkdir()
    c.execute("create table t (system varchar, record_id varchar, person_id varchar)")
    c.executemany("insert into t values (?, ?, ?)", [[r[0].split(":")[0], r[0].split(":")[1], r[7]] for r in RECORDS])
    c.execute(f"copy t to '{truth / 'records.parquet'}' (format parquet)")
    yield c
    c.close()


def _people(result) -> list[set[str]]:
    groups: dict[int, set[str]] = {}
    for uid, label in zip(result.unique_id.tolist(), result.labels.tolist()):
        groups.setdefault(label, set()).add(uid)
    return sorted((g for g in groups.values()), key=lambda g: sorted(g))


def test_shared_identifiers_and_exact_name_and_dob_link_transitively(con):
    result = baseline(con)
    assert _people(result) == [{"a:1", "b:1", "c:1"}, {"d:1"}, {"e:1", "f:1"}, {"g:1"}, {"h:1"},
                               {"i:1", "j:1"}, {"k:1"}]
    assert result.persons == 7
    # a-b-c is three pairs though the rules match only a-b (name, dob) and a-c (PNC) directly.
    assert result.linked_pairs == 3 + 1 + 1
    assert result.linked_records == 7
    assert result.rule_links == {"same PNC ID": 1, "same CRO number": 1, "same prison number": 1,
                                 "same forename, surname and date of birth": 1}


def test_missing_values_never_match(con):
    con.execute("update linkage.records set pnc = null, cro = null, prison_number = null")
    con.execute("update linkage.records set dob = null where unique_id in ('a:1', 'b:1')")
    assert baseline(con).linked_pairs == 0


def test_model_beside_baseline_against_truth(con, tmp_path):
    out = model_and_baseline(con, tmp_path / "truth")
    model, base = out["model"], out["baseline"]
    # Truth pairs: P1 (3 records) 3, P3 1, P6 1 = 5. The model's clusters: M1 3, M3 1, M4 1 (g, h:
    # wrong), M5 1 = 6 predicted, 5 right. The baseline: the 5 true pairs exactly.
    assert (model["linked_pairs"], model["persons"]) == (6, 6)
    assert model["precision"] == pytest.approx(5 / 6) and model["recall"] == 1.0
    assert (base["linked_pairs"], base["persons"]) == (5, 7)
    assert base["precision"] == 1.0 and base["recall"] == 1.0
    assert out["f1_gain"] == pytest.approx(model["f1"] - 1.0)
    no_truth = model_and_baseline(con, None)
    assert "f1" not in no_truth["model"] and no_truth["baseline"]["persons"] == 7


def test_pairwise_from_labels_counts_pairs():
    pred = np.array([0, 0, 0, 1, 1])
    truth = np.array([0, 0, 1, 1, 1])
    # predicted pairs 3 + 1 = 4, true pairs 1 + 3 = 4, both: (0,1) and (3,4) = 2
    assert pairwise_from_labels(pred, truth) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_report_shows_the_baseline_beside_the_model(linked_home):
    path = write_report(linked_home)
    text = path.read_text()
    assert "## The model beside a deterministic baseline" in text
    assert "## How the link threshold was chosen" in text
    figures = json.loads((path.parent / "linkage_quality.json").read_text())
    mb = figures["model_and_baseline"]
    assert mb["model"]["persons"] == int(figures["run"]["persons"])
    assert mb["model"]["f1"] == pytest.approx(figures["quality"]["pairwise"]["f1"])
    # Exact-match rules miss every record with a mistyped name or date of birth and no shared
    # identifier; the model's gain over them is the point of having a model.
    assert mb["baseline"]["recall"] < mb["model"]["recall"]
    assert mb["model"]["f1"] > mb["baseline"]["f1"]
    assert mb["baseline"]["persons"] > mb["model"]["persons"]
