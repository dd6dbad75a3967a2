"""Release dates for the projection, from the release-rules engine `justice.policy`.

The projection asks one question of the rules: on which day is each sentenced prisoner released?
`justice.policy` (the rules as effective-dated data, with their legal sources) answers it, the
same engine the simulator releases its prisoners by, so a rule file changes both alike. Where the
rule leaves release to the Parole Board (extended sentences, life and IPP), the rules give the
first day the Board may direct release and the day release becomes automatic (never for life and
IPP); when, in between, the Board does release is learnt from the data (`flows.ParoleDelays`).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from justice.policy import ReleaseOutcome, ReleaseRules
from justice.policy.rulefiles import INDETERMINATE_TYPES

STANDARD = "standard_determinate"


def tile(outcome: ReleaseOutcome, reps: int) -> ReleaseOutcome:
    """The same outcome for each of `reps` repetitions, repetition-major."""
    return ReleaseOutcome(*(np.tile(getattr(outcome, f.name), reps) for f in fields(outcome)))


def sentence_types(values: np.ndarray) -> np.ndarray:
    """Sentence types for the rules: an unknown type ('') is a standard determinate sentence (the
    court's record of a custodial sentence says no more)."""
    values = np.asarray(values, dtype=object)
    return np.where(values == "", STANDARD, values).astype(object)


def release(rules: ReleaseRules, *, sentence_day: np.ndarray, length_days: np.ndarray,
            offence_group: np.ndarray, remand_days: np.ndarray,
            sentence_type: np.ndarray | None = None) -> ReleaseOutcome:
    """The rules' release of each sentence under `rules` (`parole_board` and `automatic_day` always
    set)."""
    if len(sentence_day) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return ReleaseOutcome(empty, np.zeros(0, dtype=object), np.zeros(0), np.zeros(0, bool), empty)
    types = None if sentence_type is None else sentence_types(sentence_type)
    return rules.release(np.asarray(sentence_day, dtype=np.int64),
                         np.asarray(length_days, dtype=np.int64),
                         np.asarray(offence_group, dtype=object),
                         np.asarray(remand_days, dtype=np.int64), sentence_type=types)


def is_indeterminate(sentence_type: np.ndarray) -> np.ndarray:
    """True for life and IPP sentences."""
    return np.isin(np.asarray(sentence_type, dtype=object), INDETERMINATE_TYPES)

