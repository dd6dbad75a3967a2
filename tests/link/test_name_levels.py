"""Where the model's comparisons put pairs of names that the messy world makes (issue 13): a
swapped name spelt differently, a forename that is the other's middle name by a nickname, two
letters slipped in a long name, two women's different surnames. Each pair is scored by the
model's own level SQL (the order of the spec's levels decides, as in Splink)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from justice.link import model as mdl
from justice.link.standardise import alias_groups, nickname_groups, sound_key


def _record(forename, middle, surname, sex="M") -> dict:
    return {"forename": forename, "middle_names": middle, "surname": surname, "sex": sex,
            "forename_names": list(nickname_groups().get(forename, (forename,))),
            "forename_aliases": list(alias_groups().get(forename, (forename,))),
            "forename_sound": sound_key(forename), "surname_sound": sound_key(surname),
            "surname_key": surname, "surname_parts": None, "dob": dt.date(1980, 1, 2)}


def _levels(left: dict, right: dict) -> dict[str, str]:
    """The label of the level the pair falls in, per name comparison."""
    settings = mdl.splink_settings(mdl.load_model_spec())
    con = duckdb.connect()
    cols = list(left)
    types = {"forename_names": "varchar[]", "forename_aliases": "varchar[]", "surname_parts": "varchar[]",
             "dob": "date"}
    con.execute("create table p (" + ", ".join(f"{c}_{s} {types.get(c, 'varchar')}" for c in cols for s in "lr") + ")")
    con.execute(f"insert into p values ({', '.join('?' for _ in cols for _ in 'lr')})",
                [rec[c] for c in cols for rec in (left, right)])
    out = {}
    for comp in settings["comparisons"]:
        if comp["output_column_name"] not in ("forename", "surname"):
            continue
        case = mdl._level_case(comp)
        i = con.execute(f"select {case} from p").fetchall()[0][0]
        labels = [lv["label_for_charts"] for lv in comp["comparison_levels"]]
        out[comp["output_column_name"]] = "null" if i == -1 else labels[i]
    return out


@pytest.mark.parametrize(("left", "right", "forename", "surname"), [
    # Swapped and misspelt: weighed once, as a swap, under forename.
    (("clive", None, "bannonn"), ("bannon", None, "clife"), "swapped with surname, spelt differently", "null"),
    (("hugh", None, "parkihson"), ("parkimsob", None, "hugh"), "swapped with surname, spelt differently", "null"),
    (("steve", None, "harvey"), ("harfey", None, "steven"), "swapped with surname, spelt differently", "null"),
    # Swapped exactly: the older level still takes it.
    (("paul", None, "brown"), ("brown", None, "paul"), "swapped with surname", "null"),
    # Forename and middle name swapped, with a nickname on one side.
    (("david", None, "ryan"), ("bruce", "dave", "ryan"), "close to the other's middle name or a nickname of it",
     "exact"),
    # Two slips in a long surname that Jaro-Winkler misses (the first letter mistyped).
    (("jack", None, "wtevens"), ("jack", None, "stvens"), "exact", "two letters different (five letters or more)"),
    # Plainly different names stay "else".
    (("john", None, "smith"), ("mary", None, "jones"), "else", "else"),
])
def test_messy_name_pairs_fall_in_their_levels(left, right, forename, surname):
    got = _levels(_record(*left), _record(*right))
    assert got == {"forename": forename, "surname": surname}


def test_two_womens_different_surnames_are_weighed_apart_from_mens():
    women = _levels(_record("eileen", None, "carter", "F"), _record("eileen", None, "thomas", "F"))
    men = _levels(_record("james", None, "carter", "M"), _record("james", None, "thomas", "M"))
    mixed = _levels(_record("sam", None, "carter", "F"), _record("sam", None, "thomas", "M"))
    assert women["surname"] == "different, both women (a married or maiden name)"
    assert men["surname"] == mixed["surname"] == "else"
