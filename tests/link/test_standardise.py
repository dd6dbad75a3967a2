"""Standardisation: names, nicknames, identifiers (kept and flagged when invalid), postcodes."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from justice.errors import ConfigError, TransformError
from justice.identifiers import cro_check_char, pnc_check_char
from justice.link.standardise import (
    alias_groups,
    clean_name,
    load_sources,
    nickname_groups,
    sound_key,
    standardise,
)


@pytest.mark.parametrize("raw, clean", [
    ("  O'Brien ", "obrien"),
    ("Oâ€™Brien", "obrien"),          # UTF-8 apostrophe read as Windows-1252
    ("ZoÃ«", "zoe"),                   # UTF-8 ë read as Windows-1252
    ("Zoë", "zoe"),
    ("Mc\ufffdDonald", "mcdonald"),    # replacement character dropped
    ("SMITH-JONES", "smith jones"),
    ("d'Arcy  ", "darcy"),
    ("", None),
    ("  ", None),
    (None, None),
    (42, None),
])
def test_clean_name(raw, clean):
    assert clean_name(raw) == clean


def test_nicknames_map_to_formal_names():
    groups = nickname_groups()
    assert "william" in groups["bill"]
    assert "robert" in groups["bob"]
    assert "william" in groups["william"]          # a formal name stands for itself
    assert all(name in groups[name] for name in ("bill", "bob", "william"))


PNC_OK = f"2019/0001234{pnc_check_char(2019, 1234)}"
PNC_BAD = f"2019/0001234{'A' if pnc_check_char(2019, 1234) != 'A' else 'B'}"
CRO_OK = f"012345/19{cro_check_char(19, 12345)}"


def _warehouse(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("""create table people (id varchar, fore varchar, sur varchar, dob date, sex varchar,
                   pc varchar, pnc varchar, cro varchar, pn varchar)""")
    con.executemany("insert into people values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return con


SOURCE = {"src": {"records": "select id as record_id, fore as forenames, sur as surname, dob, sex, "
                             "pc as postcode, pnc, cro, pn as prison_number, null as crn, null as same_as "
                             "from people"}}


def _records(con) -> dict[str, dict]:
    cur = con.execute("select * from linkage.records")
    cols = [d[0] for d in cur.description]
    return {r[2]: dict(zip(cols, r)) for r in cur.fetchall()}


def test_standardised_columns():
    con = _warehouse([
        ("1", "Jean-Paul  Pierre", "Smith-Jones", "1980-02-01", "m", "sw1a1aa", f" {PNC_OK.lower()} ", CRO_OK, "a1234bc"),
        ("2", "BILL", "O'Brien", None, "X", "SW1A 1AA", PNC_BAD, "not a cro", None),
        ("3", None, None, None, None, "abc", "2019/1234", None, "12345"),
    ])
    assert standardise(con, SOURCE) == 3
    r = _records(con)
    one, two, three = r["1"], r["2"], r["3"]
    assert (one["forename"], one["middle_names"], one["surname"]) == ("jeanpaul", "pierre", "smithjones")
    assert one["surname_parts"] == ["smith", "jones"]
    assert one["unique_id"] == "src:1" and one["system"] == "src"
    assert (one["sex"], one["postcode"], one["postcode_district"], one["postcode_sector"]) == \
        ("M", "SW1A 1AA", "SW1A", "SW1A 1")
    assert (one["pnc"], one["pnc_core"], one["pnc_valid"]) == (PNC_OK, "2019/0001234", True)
    assert (one["cro"], one["cro_valid"]) == (CRO_OK, True)
    assert (one["prison_number"], one["prison_number_valid"]) == ("A1234BC", True)
    assert one["birth_year"] == 1980
    # A wrong check letter is kept and flagged, with the same core as the valid id.
    assert (two["pnc"], two["pnc_core"], two["pnc_valid"]) == (PNC_BAD, "2019/0001234", False)
    assert two["forename_names"] == sorted(nickname_groups()["bill"])
    assert two["surname"] == "obrien" and two["sex"] is None and two["dob"] is None
    # A malformed id is kept as keyed, flagged, with no core.
    assert (two["cro"], two["cro_core"], two["cro_valid"]) == ("NOT A CRO", None, False)
    assert (three["pnc"], three["pnc_core"], three["pnc_valid"]) == ("2019/1234", None, False)
    assert three["postcode"] is None and three["forename"] is None
    assert three["prison_number_valid"] is False
    # Fingerprints differ between records and are stable across a rebuild.
    before = {k: v["fingerprint"] for k, v in r.items()}
    standardise(con, SOURCE)
    assert {k: v["fingerprint"] for k, v in _records(con).items()} == before
    assert len(set(before.values())) == 3


def test_raw_forenames_sharing_a_first_name_keep_their_own_values():
    # The first name's lookups are worked out once per distinct first name; each raw forename
    # still gets its own middle names, and a blank one gets nothing.
    con = _warehouse([
        ("1", "Bill", "A", None, None, None, None, None, None),
        ("2", "BILL  Bob", "A", None, None, None, None, None, None),
        ("3", " bill o'Neil-Ray ", "A", None, None, None, None, None, None),
        ("4", "Bill-y", "A", None, None, None, None, None, None),
        ("5", "-", "A", None, None, None, None, None, None),
        ("6", "Zoë Ann", "A", None, None, None, None, None, None),
    ])
    standardise(con, SOURCE)
    r = _records(con)
    got = {k: (v["forename"], v["middle_names"], v["forename_names"], v["forename_aliases"], v["forename_sound"])
           for k, v in r.items()}

    def expect(first, middle):
        return (first, middle, list(nickname_groups().get(first, (first,))),
                list(alias_groups().get(first, (first,))), sound_key(first))
    assert got == {"1": expect("bill", None), "2": expect("bill", "bob"), "3": expect("bill", "oneilray"),
                   "4": expect("billy", None), "5": (None, None, None, None, None), "6": expect("zoe", "ann")}
    assert "william" in got["2"][2]
    # Record numbers follow the unique ids.
    assert [r[k]["record_no"] for k in sorted(r)] == [1, 2, 3, 4, 5, 6]


def test_duplicate_record_ids_are_refused_and_the_old_table_survives():
    con = _warehouse([("1", "A", "B", None, None, None, None, None, None)])
    standardise(con, SOURCE)
    con.execute("insert into people values ('1', 'C', 'D', null, null, null, null, null, null)")
    with pytest.raises(TransformError, match="not unique"):
        standardise(con, SOURCE)
    assert con.execute("select forename from linkage.records").fetchall() == [("a",)]


def test_a_missing_table_says_what_to_run():
    con = duckdb.connect()
    with pytest.raises(TransformError, match="justice ingest"):
        standardise(con, SOURCE)


def test_source_entries_are_checked():
    with pytest.raises(ConfigError, match="records"):
        load_sources({"bad": {"query": "select 1"}})
    con = _warehouse([("1", "A", "B", None, None, None, None, None, None)])
    with pytest.raises(ConfigError, match="extra column"):
        standardise(con, {"src": {**SOURCE["src"], "extra_columns": ["Bad Name"]}})


def test_extra_columns_are_carried_and_cleaned():
    con = _warehouse([("1", "A", "B", None, None, None, None, None, None)])
    src = {"src": {"records": SOURCE["src"]["records"].replace("from people", ", '12 High-St.' as street from people"),
                   "extra_columns": ["street"]},
           "other": {"records": SOURCE["src"]["records"].replace("id as record_id", "'x' || id as record_id")}}
    standardise(con, src)
    got = dict(con.execute("select unique_id, street from linkage.records").fetchall())
    assert got == {"src:1": "12 high st", "other:x1": None}


def test_every_builtin_source_names_the_required_columns():
    for system, entry in load_sources().items():
        for col in ("record_id", "forenames", "surname", "dob", "same_as"):
            assert col in entry["records"], (system, col)


def test_forenames_cleaned_part_by_part_give_the_words_of_the_whole():
    """_name_table cleans each space-separated part of a raw forename once; the words must be
    those of the whole name cleaned at once, for awkward text too (a mis-decoded character whose
    second byte reads as a no-break space, tabs, stray punctuation, accents)."""
    from justice.link.standardise import _name_table

    rng = np.random.default_rng(3)
    alphabet = list("abcJOHN -'.,\t\u00a0") + ["Ã\u00a0", "Ã©", "é", "\ufffd", "O'", "Mc"]
    raws = ["".join(rng.choice(alphabet, int(rng.integers(1, 12)))) for _ in range(3000)]
    table = _name_table(sorted(set(raws)), [])[0].to_pylist()
    assert len(table) == len(set(raws))
    for row in table:
        raw = row["raw"]
        words = (clean_name(raw.replace("-", "")) or "").split()
        assert (row["forename"], row["middle_names"]) == (
            (words[0], " ".join(words[1:]) or None) if words else (None, None)), raw
