"""A hard negative that rests on two forenames being different names (possible twins, possible
siblings) does not keep two groups apart when the group of one of its records already holds the
other's forename, or a way of writing it, on another record (justice.link.cluster.NodeNames,
`alike_forenames`; `lifted_by_forename` in the model spec); twins, whose records carry their own
forenames, stay apart."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from justice.errors import ConfigError
from justice.link import model as mdl
from justice.link.cluster import NodeNames, cluster
from justice.link.persons import cluster_labels, constraints
from justice.link.standardise import alias_groups


def _names(forenames: list[str | None], sexes: list[str | None] | None = None,
           middles: list[str | None] | None = None) -> NodeNames:
    aliases = alias_groups()
    return NodeNames.from_arrays(forenames, [aliases.get(f, (f,)) if f else () for f in forenames],
                                 sexes or ["M"] * len(forenames), middles)


def _three(forenames, sexes=None, soft=True, by_forename=True, middles=None) -> np.ndarray:
    # 0 - 1 (weight 30), 1 - 2 (weight 20); records 0 and 2 a hard-negative pair. Record 0 joins
    # record 1 first; then record 2 comes to join the group {0, 1}.
    left, right, weight = np.array([0, 1]), np.array([1, 2]), np.array([30.0, 20.0])
    pnc = np.array([None, None, None], dtype=object)
    return cluster(3, left, right, weight, np.array([0]), np.array([2]), [pnc], soft=np.array([soft]),
                   names=_names(forenames, sexes, middles), by_forename=np.array([by_forename]))


def _people(forenames, **kw) -> int:
    """How many people `_three` makes of the three records."""
    return len(set(_three(forenames, **kw).tolist()))


def test_a_group_holding_the_other_forename_lifts_the_pair():
    # "kod woods" (a mistyped Kit) among Chris Woods's records, and "chris woods": one man.
    assert _people(["kod", "chris", "chris"]) == 1
    # A nickname counts as the name ("christopher" in the group, "chris" coming).
    assert _people(["kod", "christopher", "chris"]) == 1


def test_a_forename_written_another_way_counts_as_held():
    # "jeffrey hardy" (Paul Jeffrey Hardy's middle name as his forename) among Paul's records, and
    # "paup hardy" (one letter from Paul) born 1 January that year at his address: one man.
    assert _people(["jeffrey", "paul", "paup"]) == 1
    # "garri" and "garry": Jaro-Winkler 0.92.
    assert _people(["jason", "garry", "garri"]) == 1
    # "tinoghy" (two keying errors; Jaro-Winkler 0.847 to "timothy") among Timothy Graham
    # Farmer's records, and "graham farmer": one man, as the model's "two letters different"
    # level has it in names of five letters or more.
    assert _people(["graham", "timothy", "tinoghy"]) == 1
    # Two letters apart in shorter names are other names ("anna" and "alma").
    assert _people(["rose", "anna", "alma"]) == 2


def test_a_middle_name_counts_as_held():
    # "jason hammond" (his middle name as his forename) comes to Garry's group: apart while the
    # group holds only "garry", one man once it holds "garry jason hammond".
    assert _people(["garry", "garry", "jason"]) == 2
    assert _people(["garry", "garry", "jason"], middles=[None, "jason", None]) == 1
    # A twin's middle name that is no name of the other's keeps them apart.
    assert _people(["gary", "gary", "graham"], middles=[None, "john", None]) == 2


def test_twins_stay_apart():
    # Gary's group holds "gary" and an initial; Graham's forename is in neither.
    assert _people(["gary", "g", "graham"]) == 2
    assert _people(["gary", "gary", "graham"]) == 2
    # A mistyped name of one twin's is still that twin's.
    assert _people(["james", "jmaes", "kevin"]) == 2
    assert _people(["david", "dave", "michael"]) == 2


def test_the_forename_held_must_be_of_the_same_sex():
    # Christopher and Christina, twins of different sex; "chris" in his group is his.
    assert _people(["christopher", "chris", "christina"], sexes=["M", "M", "F"]) == 2
    # The sex left unrecorded on one side does not stand in the way.
    assert _people(["kod", "chris", "chris"], sexes=["M", None, "M"]) == 1


def test_only_the_rules_resting_on_forenames_are_lifted():
    # Dates of birth far apart (not `by_forename`): a father and son of one name stay apart.
    assert _people(["kod", "chris", "chris"], by_forename=False) == 2
    # A reviewer's "not a match" is never lifted, whatever the spec says of the rule.
    assert _people(["kod", "chris", "chris"], soft=False) == 2
    # Without the records' names the rule holds as before.
    left, right, weight = np.array([0, 1]), np.array([1, 2]), np.array([30.0, 20.0])
    labels = cluster(3, left, right, weight, np.array([0]), np.array([2]), [np.array([None] * 3, dtype=object)],
                     soft=np.array([True]), by_forename=np.array([True]))
    assert len(set(labels.tolist())) == 2


def test_the_shipped_spec_lifts_twins_and_siblings_not_dates_far_apart():
    rules = {r["name"]: r for r in constraints(mdl.load_model_spec())["hard_negatives"]}
    assert rules["possible twins"]["lifted_by_forename"] is True
    assert rules["possible siblings"]["lifted_by_forename"] is True
    assert not rules["dates of birth far apart"].get("lifted_by_forename", False)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_lifted_by_forename_must_be_true_or_false(tmp_path, value):
    spec = mdl.load_model_spec()
    spec["hard_negatives"][0]["lifted_by_forename"] = value
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="lifted_by_forename must be true or false"):
        mdl.load_model_spec(path)


def test_a_hard_negative_needs_a_name_and_a_condition(tmp_path):
    spec = mdl.load_model_spec()
    spec["hard_negatives"][0].pop("sql")
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="needs a `name` and an `sql` condition"):
        mdl.load_model_spec(path)


def _warehouse():
    import datetime as dt

    import duckdb

    from justice.link.standardise import nickname_groups

    con = duckdb.connect()
    con.execute("create schema linkage")
    con.execute("""create table linkage.records (unique_id varchar, system varchar, record_id varchar,
        forename varchar, middle_names varchar, forename_names varchar[], forename_aliases varchar[],
        surname varchar, dob date, sex varchar, postcode varchar, pnc_core varchar, pnc_valid boolean,
        cro_core varchar, cro_valid boolean, prison_number varchar, same_as varchar)""")
    dob = dt.date(1990, 7, 4)
    # "kod woods" (a mistyped Kit, PNC X), "chris woods" (PNC X) and "chris woods" (no PNC): the
    # first two one man by the PNC ID; the model links the two Chrises; "kod" and the third look
    # like twins by their forenames.
    for uid, fore, pnc in (("m:a", "kod", "2012/8590368"), ("m:b", "chris", "2012/8590368"), ("m:c", "chris", None)):
        con.execute("insert into linkage.records values (?, 'm', ?, ?, null, ?, ?, 'woods', ?, 'M', null, ?, ?, "
                    "null, null, null, null)",
                    [uid, uid[2:], fore, list(nickname_groups().get(fore, (fore,))),
                     list(alias_groups().get(fore, (fore,))), dob, pnc, pnc is not None])
    con.execute("create table linkage.pairs (unique_id_l varchar, unique_id_r varchar, match_weight double)")
    con.executemany("insert into linkage.pairs values (?, ?, ?)",
                    [("m:a", "m:b", 30.0), ("m:b", "m:c", 20.0), ("m:a", "m:c", 4.0)])
    con.execute("create table linkage.clerical_decisions (unique_id_l varchar, unique_id_r varchar, "
                "decision varchar)")
    return con


@pytest.mark.parametrize("lifted", [True, False])
def test_clustering_reads_the_flag_from_the_spec(lifted):
    rules = constraints(mdl.load_model_spec())
    rules.update(identifier_links=[], histories={}, identifier_holders={}, strangers={})
    for r in rules["hard_negatives"]:
        r["lifted_by_forename"] = lifted and r["name"] == "possible twins"
    con = _warehouse()
    out = cluster_labels(con, 6.0, rules)
    labels = dict(zip(out["unique_id"].tolist(), out["labels"].tolist()))
    assert labels["m:a"] == labels["m:b"]
    assert (labels["m:c"] == labels["m:b"]) is lifted
