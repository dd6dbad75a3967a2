"""Release and recall rules as data, and the one engine that applies them.

Rules live in versioned, effective-dated YAML files with their legal sources (`rules/`, one file
per rule or family; format and precedence in docs/policy-rules.md). The simulator and the
projections both compute release days here, so a policy change is a file edit::

    from justice.policy import load_release_rules
    rules = load_release_rules(extra=[Path("sds45.yaml")], without=["sds40"])
    out = rules.release(sentence_day=days, length_days=lengths, offence_group=groups,
                        remand_days=remand)      # out.release_day, out.rule, out.fraction
    back = rules.recall(recall_day=..., sentence_day=..., length_days=..., offence_group=...)
"""

from __future__ import annotations

from justice.errors import PolicyError
from justice.policy.engine import (
    OTHER_GROUP,
    RecallOutcome,
    ReleaseOutcome,
    ReleaseRules,
    default_release_rules,
    load_release_rules,
    months_to_days,
)
from justice.policy.rulefiles import MONTH_DAYS, Rule, read_rule_file

__all__ = [
    "MONTH_DAYS",
    "OTHER_GROUP",
    "PolicyError",
    "RecallOutcome",
    "ReleaseOutcome",
    "ReleaseRules",
    "Rule",
    "default_release_rules",
    "load_release_rules",
    "months_to_days",
    "read_rule_file",
]
