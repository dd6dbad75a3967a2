"""datasets.yaml agrees with exports.yaml: a typo there would silently drop a dimension or
leave a rate unrecomputed, so it is checked here."""

from __future__ import annotations

from urllib.parse import parse_qsl

from justice.explore.catalogue import explorer_config
from justice.transform.publish import exports


def test_every_aggregate_export_has_reading_rules_and_they_name_its_columns():
    specs = exports()
    config = explorer_config()["datasets"]
    aggregate = {name for name, spec in specs.items() if not spec.person_level}
    assert set(config) == aggregate  # and no person-level file has any
    for name, rules in config.items():
        spec = specs[name]
        assert set(spec.dims) <= set(rules["dims"]), name  # every cell's dimensions offered
        assert rules["time"] in rules["dims"], name
        measures = {*spec.counts, *(rules.get("measures") or [])}
        for ratio, (numerator, denominator, scale) in (rules.get("ratios") or {}).items():
            assert ratio in spec.derived, (name, ratio)
            assert {numerator, denominator} <= measures and scale > 0, (name, ratio)
            assert set(spec.derived[ratio]) <= {numerator, denominator}, (name, ratio)
        for dim, names in (rules.get("not_additive_over") or {}).items():
            assert dim in rules["dims"] and set(names) <= measures, (name, dim)
        for key, value in parse_qsl(rules["default"]):
            assert key in ("measure", "row", "col", "totals") or key.startswith("f."), (name, key)
            if key == "measure":
                assert value in measures or value in spec.derived, (name, value)
            elif key in ("row", "col"):
                assert value in rules["dims"], (name, value)


def test_headline_tables_name_served_datasets():
    config = explorer_config()
    assert set(config["headlines"]) == {"courts", "reoffending", "safety"}
    for topic in config["headlines"].values():
        for table in topic["tables"]:
            assert table["dataset"] in config["datasets"], table["title"]
