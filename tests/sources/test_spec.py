"""Source specs: validation with errors that name the file and the key."""

from __future__ import annotations

import pytest
import yaml

from justice.errors import ConfigError
from justice.sources.spec import load_spec, parse_spec

GOOD = {
    "system": "court_fines",
    "format": "csv",
    "encoding": "cp1252",
    "files": "*.csv",
    "tables": [{"name": "fines", "record_key": ["account"], "fields": [
        {"source": "Account No", "name": "account", "required": True},
        {"source": "Imposed", "name": "imposed_on", "type": "date", "format": "%d/%m/%Y"},
    ]}],
}


def test_a_good_spec_parses():
    spec = parse_spec(GOOD, "fines.yaml")
    table = spec.table("fines")
    assert spec.system == "court_fines" and spec.encoding == "cp1252"
    assert table.required_sources == ("Account No",)
    assert table.field("imposed_on").type == "date"


@pytest.mark.parametrize("change, message", [
    ({"format": "parquet"}, "format: 'parquet' is not one of"),
    ({"encoding": "klingon"}, "not a known codec"),
    ({"system": "Court Fines"}, "system:"),
    ({"files": None}, "needs a files pattern"),
    ({"cursor": "magic"}, "cursor:"),
    ({"tables": []}, "tables: expected a non-empty list"),
])
def test_bad_specs_say_what_and_where(change, message):
    data = {**GOOD, **change}
    with pytest.raises(ConfigError, match=message) as info:
        parse_spec(data, "fines.yaml")
    assert "fines.yaml" in str(info.value)


def test_bad_fields_are_named():
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["tables"][0]["fields"][1]["type"] = "money"
    with pytest.raises(ConfigError, match=r"tables\[0\].fields\[1\].type"):
        parse_spec(data, "fines.yaml")
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["tables"][0]["record_key"] = ["nope"]
    with pytest.raises(ConfigError, match="record_key"):
        parse_spec(data, "fines.yaml")


def test_yaml_errors_give_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("system: x\nformat: csv\ntables: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_spec(path)


def test_database_specs_need_a_cursor_field_for_incremental_loads():
    data = {"system": "nomis", "format": "database", "url": "sqlite:///x", "cursor": "modified_timestamp",
            "tables": [{"name": "offenders", "fields": [{"source": "OFFENDER_ID", "name": "offender_id"}]}]}
    with pytest.raises(ConfigError, match="cursor_field"):
        parse_spec(data, "nomis.yaml")
