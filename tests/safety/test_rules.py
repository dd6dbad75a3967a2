"""rules.yaml: the packaged rules load, and a wrong file says which rule and key are wrong."""

from __future__ import annotations

import copy

import pytest
import yaml

from justice.errors import ConfigError
from justice.safety.rules import MOVE_RULE_KINDS, alert_descriptions, load_rules, parse_rules


def _raw():
    from importlib import resources

    return yaml.safe_load(
        resources.files("justice.safety").joinpath("rules.yaml").read_text("utf-8")
    )


def test_packaged_rules_load_with_every_kind_and_known_alert_codes():
    rules = load_rules()
    assert {r.kind for r in rules.move_rules} == set(MOVE_RULE_KINDS)
    assert {r.severity for r in rules.move_rules} == {"stop", "warning"}
    known = set(alert_descriptions())
    codes = {c for r in rules.move_rules for c in r.alerts} | {
        c for f in rules.flags.values() for c in f.alerts
    }
    assert codes <= known, (
        f"rules read alert codes the prison system does not have: {codes - known}"
    )
    assert rules.incident_windows == (30, 90)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["cell_move_rules"][1].update(severity="maybe"),
            "non-association-cell.*severity must be",
        ),
        (lambda d: d["cell_move_rules"][1].update(kind="telepathy"), "unknown kind 'telepathy'"),
        (
            lambda d: d["cell_move_rules"][1].pop("restriction"),
            "non-association-cell.*'restriction' is missing",
        ),
        (
            lambda d: d["cell_move_rules"][1].update(restriction="PRISON"),
            "restriction must be one of",
        ),
        (
            lambda d: d["cell_move_rules"][2].update(id="non-association-cell"),
            "used twice: non-association-cell",
        ),
        (
            lambda d: d["cell_move_rules"][-1].update(flags=["no_such_flag"]),
            "no_such_flag are not defined",
        ),
        (lambda d: d["cell_move_rules"][0].update(alerts=["XA"]), "do not apply to kind capacity"),
        (
            lambda d: d["flags"]["open_acct"].update(colour="mauve"),
            r"flags.open_acct: colour 'mauve'",
        ),
        (lambda d: d["flags"]["open_acct"].update(alert_scope="galaxy"), "alert_scope must be"),
        (lambda d: d.update(effective_from="soon"), "effective_from must be a date"),
    ],
)
def test_a_wrong_rules_file_names_the_rule_and_key(change, message):
    data = copy.deepcopy(_raw())
    change(data)
    with pytest.raises(ConfigError, match=message):
        parse_rules(data, "rules.yaml")
