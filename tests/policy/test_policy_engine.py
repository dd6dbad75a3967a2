"""The release-rules engine applies the package's rule files as the law reads."""

from __future__ import annotations

import numpy as np
import pytest

from justice.policy import (
    OTHER_GROUP,
    PolicyError,
    ReleaseRules,
    load_release_rules,
    months_to_days,
)
from justice.sim.reference import day_number

THEFT, SEXUAL, VIOLENCE, DRUGS = ("04 Theft offences", "02 Sexual offences",
                                  "01 Violence against the person", "06 Drug offences")
SDS40 = day_number("2024-09-10")
TRANCHE2 = day_number("2024-10-22")


@pytest.fixture(scope="module")
def rules() -> ReleaseRules:
    return load_release_rules()


def one(rules, sentenced: str, months: float, group: str, remand: int = 0):
    out = rules.release(sentence_day=np.array([day_number(sentenced)]),
                        length_days=months_to_days([months]),
                        offence_group=np.array([group], dtype=object), remand_days=np.array([remand]))
    return int(out.release_day[0]), out.rule[0], float(out.fraction[0])


def test_package_rules_carry_their_legal_sources(rules):
    assert set(rules.names) == {"standard_determinate_half", "sds40", "remand_credit",
                                "fixed_term_recall", "standard_recall", "sds_two_thirds",
                                "eds_automatic_two_thirds", "eds_parole_board",
                                "indeterminate_parole_board"}
    for r in rules.rules:
        assert r.source["title"] and r.source["url"].startswith("https://www.legislation.gov.uk/")
    assert rules.rule("sds40").source["url"].endswith("/uksi/2024/844")
    assert rules.rule("standard_determinate_half").source["url"].endswith("/section/244")


def test_half_before_sds40_and_forty_percent_after(rules):
    day, rule, fraction = one(rules, "2022-01-01", 24, THEFT)
    assert (rule, fraction) == ("standard_determinate_half", 0.5)
    assert day == day_number("2022-01-01") + round(0.5 * 24 * 30.4375)
    day, rule, fraction = one(rules, "2024-06-01", 24, THEFT)
    assert (rule, fraction) == ("sds40", 0.4)
    assert day == day_number("2024-06-01") + round(0.4 * 24 * 30.4375)


def test_a_passed_forty_percent_point_releases_on_the_day(rules):
    # Half point 2025-01-01 is after the change; the 40% point (2024-08-07) had passed.
    day, rule, _ = one(rules, "2023-01-01", 48, THEFT)
    assert rule == "sds40" and day == SDS40


def test_sds40_exclusions(rules):
    assert one(rules, "2024-06-01", 24, SEXUAL)[1] == "standard_determinate_half"
    # Excluded from SDS40 and, since 28 June 2022, released at two-thirds (sds_two_thirds.yaml).
    assert one(rules, "2024-06-01", 48, VIOLENCE)[1] == "sds_two_thirds"
    assert one(rules, "2022-06-01", 48, VIOLENCE)[1] == "standard_determinate_half"
    assert one(rules, "2024-06-01", 47.9, VIOLENCE)[1] == "sds40"


def test_sds40_second_tranche_for_long_sentences_imposed_before(rules):
    # Six years from 2022-01-01: half point 2025-01-01, 40% point passed: out on 22 October.
    day, rule, _ = one(rules, "2022-01-01", 72, DRUGS)
    assert rule == "sds40" and day == TRANCHE2
    # Half point on 2024-10-01, between the tranches: released at half, as before.
    start = day_number("2024-10-01") - round(0.5 * 60 * 30.4375)
    out = rules.release(np.array([start]), months_to_days([60]), DRUGS, 0)
    assert out.rule[0] == "standard_determinate_half"
    assert out.release_day[0] == day_number("2024-10-01")
    # Five years or more imposed from 10 September 2024 is in the first tranche.
    out = rules.release(np.array([SDS40 - 200, SDS40]), months_to_days([60, 60]), DRUGS,
                        np.array([600, 700]))
    assert out.rule[1] == "sds40" and out.release_day[1] == SDS40 + round(0.4 * 1826) - 700
    assert out.release_day[0] == TRANCHE2


def test_remand_is_credited_and_release_never_precedes_sentence(rules):
    base = one(rules, "2020-01-01", 12, THEFT)[0]
    assert one(rules, "2020-01-01", 12, THEFT, remand=40)[0] == base - 40
    assert one(rules, "2020-01-01", 12, THEFT, remand=400)[0] == day_number("2020-01-01")
    no_credit = load_release_rules(without=["remand_credit"])
    assert one(no_credit, "2020-01-01", 12, THEFT, remand=40)[0] == base


def test_without_sds40_everyone_is_released_at_half():
    rules = load_release_rules(without=["sds40"])
    day, rule, _ = one(rules, "2024-06-01", 24, THEFT)
    assert rule == "standard_determinate_half"
    assert day == day_number("2024-06-01") + round(0.5 * 24 * 30.4375)


def test_an_extra_rule_file_changes_release_days(tmp_path):
    (tmp_path / "sds45.yaml").write_text("""
source: {title: "Scenario: release at 45% for sentences under four years"}
rules:
  - name: sds45_under_four_years
    kind: release
    effective_from: 2025-06-01
    fraction: 0.45
    eligibility: {sentence_months_under: 48}
""")
    rules = load_release_rules(extra=[tmp_path / "sds45.yaml"])
    day, rule, fraction = one(rules, "2025-03-01", 36, SEXUAL)
    assert (rule, fraction) == ("sds45_under_four_years", 0.45)
    assert day == day_number("2025-03-01") + round(0.45 * 36 * 30.4375)
    assert one(rules, "2025-03-01", 48, THEFT)[1] == "sds40"
    # The same rules given as a mapping (a scenario's own section).
    mapped = load_release_rules(extra=[{"withdraw": ["sds40"]}])
    assert "sds40" not in mapped.names


def test_vectorised_over_many_sentences_and_unknown_groups(rules):
    rng = np.random.default_rng(5)
    n = 50_000
    groups = np.array([THEFT, SEXUAL, VIOLENCE, DRUGS, None, "99 Not a group"], dtype=object)
    g = groups[rng.integers(0, len(groups), n)]
    sentenced = rng.integers(day_number("2015-01-01"), day_number("2025-12-31"), n)
    length = rng.integers(1, 3000, n)
    remand = rng.integers(0, 200, n)
    out = rules.release(sentenced, length, g, remand)
    assert out.release_day.dtype == np.int64 and out.fraction.dtype == np.float64
    assert np.all(out.release_day >= sentenced)
    # Row by row agrees with the vector.
    for i in rng.choice(n, 30, replace=False):
        single = rules.release(sentenced[i:i + 1], length[i:i + 1], g[i], remand[i])
        assert single.release_day[0] == out.release_day[i] and single.rule[0] == out.rule[i]
    # A group the reference does not know is not excluded by group.
    unknown = (g == "99 Not a group") | (g == None)
    assert rules.groups[-1] == OTHER_GROUP
    late = unknown & (out.release_day > TRANCHE2 + 400) & (sentenced > SDS40)
    assert late.any() and np.all(out.rule[late] == "sds40")


def test_fixed_term_and_standard_recall(rules):
    recall_day = np.full(5, day_number("2023-03-01"))
    sentenced = np.full(5, day_number("2022-06-01"))
    length = months_to_days([10, 24, 24, 24, 9.5])
    suitable = np.array([True, True, False, False, True])
    rerelease = np.array([0, 0, 0, day_number("2023-06-01"), 0])
    out = rules.recall(recall_day, sentenced, length, THEFT, suitable,
                       rerelease_day=np.where(rerelease > 0, rerelease, sentenced + length))
    assert list(out.kind) == ["fixed_term", "fixed_term", "standard", "standard", "fixed_term"]
    assert list(out.rule[:3]) == ["fixed_term_recall", "fixed_term_recall", "standard_recall"]
    assert out.days_in_custody[0] == 14 and out.days_in_custody[1] == 28
    assert out.release_day[2] == sentenced[2] + length[2]
    assert out.release_day[3] == day_number("2023-06-01")
    # A fixed term never runs past the sentence end.
    assert out.release_day[4] == min(recall_day[4] + 14, sentenced[4] + length[4])


def test_an_invalid_extra_file_names_itself(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: x, kind: release, effective_from: 2025-01-01, fraction: 2}]\n"
                   "source: {title: t}\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml: rule 'x': fraction 2 must be in \(0, 1\]"):
        load_release_rules(extra=[bad])


def test_public_api_is_pinned():
    """The names helper P's projections and the simulator rely on; change them deliberately."""
    import inspect

    from justice import policy

    assert sorted(policy.__all__) == sorted([
        "MONTH_DAYS", "OTHER_GROUP", "PolicyError", "RecallOutcome", "ReleaseOutcome",
        "ReleaseRules", "Rule", "default_release_rules", "load_release_rules", "months_to_days",
        "read_rule_file"])
    assert list(inspect.signature(policy.load_release_rules).parameters) == ["extra", "without"]
    assert list(inspect.signature(ReleaseRules.release).parameters) == [
        "self", "sentence_day", "length_days", "offence_group", "remand_days", "sentence_type"]
    assert list(inspect.signature(ReleaseRules.recall).parameters) == [
        "self", "recall_day", "sentence_day", "length_days", "offence_group",
        "fixed_term_suitable", "rerelease_day", "sentence_type"]
    assert [f for f in policy.ReleaseOutcome.__dataclass_fields__] == [
        "release_day", "rule", "fraction", "parole_board", "automatic_day"]
