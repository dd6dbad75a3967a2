"""Release dates for the projection, from the release-rules engine `justice.policy`.

The projection asks one question of the rules: on which day is each sentenced prisoner released?
`justice.policy` (the rules as effective-dated data, with their legal sources) answers it, the
same engine the simulator releases its prisoners by, so a rule file changes both alike. Where the
rule leaves release to the Parole Board (extended sentences, life and IPP), the rules give the
first day the Board may direct release and the day release becomes automatic (never for life and
IPP); when, in between, the Board does release is learnt from the data (`flows.ParoleDelays`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from justice.policy import ReleaseRules
from justice.policy.rulefiles import INDETERMINATE_TYPES

STANDARD = "standard_determinate"


@dataclass(frozen=True)
class Release:
    """What the rules say of each sentence's release (int64 day numbers)."""

    day: np.ndarray        # the release day; where the Board decides, the first day it may
    parole: np.ndarray     # bool: release is the Parole Board's decision
    automatic: np.ndarray  # where the Board decides, the day release is automatic (NO_DAY: never)

    def tile(self, reps: int) -> Release:
        """The same outcome for each of `reps` repetitions, repetition-major."""
        return Release(np.tile(self.day, reps), np.tile(self.parole, reps), np.tile(self.automatic, reps))


def sentence_types(values: np.ndarray) -> np.ndarray:
    """Sentence types for the rules: an unknown type ('') is a standard determinate sentence (the
    court's record of a custodial sentence says no more)."""
    values = np.asarray(values, dtype=object)
    return np.where(values == "", STANDARD, values).astype(object)


def release(rules: ReleaseRules, *, sentence_day: np.ndarray, length_days: np.ndarray,
            offence_group: np.ndarray, remand_days: np.ndarray,
            sentence_type: np.ndarray | None = None) -> Release:
    """The rules' release of each sentence under `rules`."""
    if len(sentence_day) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Release(empty, np.zeros(0, bool), empty)
    types = None if sentence_type is None else sentence_types(sentence_type)
    out = rules.release(np.asarray(sentence_day, dtype=np.int64),
                        np.asarray(length_days, dtype=np.int64),
                        np.asarray(offence_group, dtype=object),
                        np.asarray(remand_days, dtype=np.int64), sentence_type=types)
    day = np.asarray(out.release_day, dtype=np.int64)
    parole = np.zeros(len(day), bool) if out.parole_board is None else np.asarray(out.parole_board, bool)
    automatic = day if out.automatic_day is None else np.asarray(out.automatic_day, dtype=np.int64)
    return Release(day, parole, automatic)


def is_indeterminate(sentence_type: np.ndarray) -> np.ndarray:
    """True for life and IPP sentences."""
    return np.isin(np.asarray(sentence_type, dtype=object), INDETERMINATE_TYPES)

