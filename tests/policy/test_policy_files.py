"""Invalid rule files get errors that name the file, the rule and what is wrong."""

from __future__ import annotations

import pytest

from justice.errors import ConfigError, PolicyError
from justice.policy import load_release_rules

SOURCE = 'source: {title: "Scenario", provision: "test"}\n'


def _load(tmp_path, body: str, name: str = "scenario.yaml", without=()):
    path = tmp_path / name
    path.write_text(body)
    return load_release_rules(extra=[path], without=without)


def _fails(tmp_path, body: str, *fragments: str, without=()) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        _load(tmp_path, body, without=without)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_policy_error_is_a_config_error_with_file_and_rule(tmp_path):
    err = _fails(tmp_path, SOURCE + "rules: [{name: r45, kind: release, effective_from: "
                 "2025-01-01, fraction: 0}]\n", "scenario.yaml", "rule 'r45'", "fraction 0")
    assert isinstance(err, ConfigError)
    assert err.file.endswith("scenario.yaml") and err.rule == "r45"


@pytest.mark.parametrize("fraction", ["0", "-0.1", "1.5", "'half'"])
def test_fraction_outside_zero_one(tmp_path, fraction):
    _fails(tmp_path, SOURCE + f"rules: [{{name: r, kind: release, effective_from: 2025-01-01, "
           f"fraction: {fraction}}}]\n", "scenario.yaml", "rule 'r'", "must be in (0, 1]")


def test_fraction_of_one_is_allowed(tmp_path):
    rules = _load(tmp_path, SOURCE + "rules: [{name: whole, kind: release, effective_from: "
                  "2025-01-01, fraction: 1}]\n")
    assert rules.rule("whole").fraction == 1.0


def test_overlapping_rules_on_the_same_day(tmp_path):
    body = SOURCE + """rules:
  - name: r45
    kind: release
    effective_from: 2024-09-10
    fraction: 0.45
    eligibility: {offence_groups: ["04 Theft offences"], sentence_months_under: 48}
"""
    _fails(tmp_path, body, "scenario.yaml", "rule 'r45'", "overlaps rule 'sds40'",
           "'04 Theft offences'", "2024-09-10", "precedence")
    # A higher precedence settles it, as does withdrawing the other rule.
    rules = _load(tmp_path, body.replace("fraction: 0.45", "fraction: 0.45\n    precedence: 1"))
    assert "r45" in rules.names
    assert "r45" in _load(tmp_path, "withdraw: [sds40]\n" + body).names


def test_overlapping_tranches_within_a_rule(tmp_path):
    _fails(tmp_path, SOURCE + """rules:
  - name: two_tranches
    kind: release
    effective_from: 2026-01-01
    fraction: 0.45
    tranches:
      - {from: 2026-01-01, sentence_months_under: 60}
      - {from: 2026-01-01, sentence_months_under: 24}
""", "rule 'two_tranches'", "overlaps its tranche 1")


def test_unknown_offence_group(tmp_path):
    _fails(tmp_path, SOURCE + """rules:
  - name: r
    kind: release
    effective_from: 2026-01-01
    fraction: 0.45
    eligibility:
      exclude: [{offence_groups: ["02 Sexual offence"]}]
""", "scenario.yaml", "rule 'r'", "unknown offence group '02 Sexual offence'",
           "02 Sexual offences")


def test_tranche_dates_out_of_order(tmp_path):
    _fails(tmp_path, SOURCE + """rules:
  - name: r
    kind: release
    effective_from: 2026-01-01
    fraction: 0.45
    tranches:
      - {from: 2026-03-01, sentence_months_under: 60}
      - {from: 2026-02-01, sentence_months_at_least: 60}
""", "rule 'r'", "dates out of order", "tranche 2 starts 2026-02-01", "2026-03-01")
    _fails(tmp_path, SOURCE + """rules:
  - name: r
    kind: release
    effective_from: 2026-01-01
    fraction: 0.45
    tranches: [{from: 2025-12-01}]
""", "dates out of order", "before the rule's effective_from")


def test_sentencing_dates_out_of_order(tmp_path):
    _fails(tmp_path, SOURCE + """rules:
  - name: r
    kind: release
    effective_from: 2026-01-01
    fraction: 0.45
    eligibility: {sentenced_from: 2025-01-01, sentenced_before: 2024-01-01}
""", "rule 'r'", "dates out of order")


def test_bad_date(tmp_path):
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: release, effective_from: '2026-13-01', "
           "fraction: 0.4}]\n", "rule 'r'", "effective_from '2026-13-01' is not a date")
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: release, effective_from: 2026-13-01, "
           "fraction: 0.4}]\n", "scenario.yaml", "not valid YAML", "month must be in 1..12")


def test_missing_source(tmp_path):
    _fails(tmp_path, "rules: [{name: r, kind: release, effective_from: 2026-01-01, "
           "fraction: 0.4}]\n", "scenario.yaml", "rule 'r'", "no legal `source`")
    _fails(tmp_path, "source: {url: 'https://example.org'}\nrules: []\nwithdraw: [sds40]\n",
           "scenario.yaml", "`source` must be a mapping with at least a `title`")


def test_unknown_keys(tmp_path):
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: release, effective_from: 2026-01-01, "
           "fraction: 0.4, fracton: 0.3}]\n", "rule 'r'", "unknown key 'fracton'")
    _fails(tmp_path, SOURCE + "rule: []\n", "scenario.yaml", "unknown key 'rule' at the top")
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: release, effective_from: 2026-01-01, "
           "fraction: 0.4, eligibility: {offence_group: [x]}}]\n", "unknown key 'offence_group'",
           "in eligibility")


def test_unknown_kind_and_missing_fields(tmp_path):
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: parole, effective_from: 2026-01-01}]\n",
           "rule 'r'", "kind 'parole'")
    _fails(tmp_path, SOURCE + "rules: [{name: r, kind: release, fraction: 0.4}]\n",
           "rule 'r'", "no `effective_from`")
    _fails(tmp_path, SOURCE + "rules: [{kind: release}]\n", "rule 1 has no `name`")


def test_withdrawing_an_unknown_rule(tmp_path):
    _fails(tmp_path, "withdraw: [sds50]\n", "scenario.yaml", "no rule named 'sds50'")
    with pytest.raises(PolicyError, match="--without-rule: withdraw: no rule named 'sds4'"):
        load_release_rules(without=["sds4"])


def test_a_name_defined_twice(tmp_path):
    _fails(tmp_path, SOURCE + "rules: [{name: sds40, kind: release, effective_from: 2026-01-01, "
           "fraction: 0.3}]\n", "rule 'sds40'", "already loaded from",
           "withdraw: [sds40]")


def test_sentences_left_without_a_release_rule(tmp_path):
    _fails(tmp_path, SOURCE + """withdraw: [standard_determinate_half, sds40]
rules:
  - name: only_theft
    kind: release
    effective_from: 1900-01-01
    fraction: 0.5
    eligibility: {offence_groups: ["04 Theft offences"]}
""", "no release rule covers offence group")
    with pytest.raises(PolicyError, match="no standard_recall rule is loaded"):
        load_release_rules(without=["standard_recall"])


def test_fixed_term_recall_bands_must_cover_each_length_once(tmp_path):
    _fails(tmp_path, SOURCE + """withdraw: [fixed_term_recall]
rules:
  - name: ftr
    kind: fixed_term_recall
    effective_from: 2026-01-01
    days:
      - {sentence_months_under: 12, days: 14}
      - {sentence_months_at_least: 24, days: 28}
""", "rule 'ftr'", "days bands must cover every sentence length exactly once",
           "none covers sentences of 12.0 months")


def test_not_yaml_and_unreadable(tmp_path):
    _fails(tmp_path, "rules: [unclosed\n", "scenario.yaml", "not valid YAML")
    with pytest.raises(PolicyError, match="missing.yaml: cannot be read"):
        load_release_rules(extra=[tmp_path / "missing.yaml"])
