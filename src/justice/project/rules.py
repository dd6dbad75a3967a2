"""Release dates for the projection, from the release-rules engine `justice.policy`.

The projection asks one question of the rules: on which day is each sentenced prisoner released?
`justice.policy` (the rules as effective-dated data, with their legal sources) answers it, the
same engine the simulator releases its prisoners by, so a rule file changes both alike.
"""

from __future__ import annotations

import numpy as np

from justice.policy import ReleaseRules


def release_days(rules: ReleaseRules, *, sentence_day: np.ndarray, length_days: np.ndarray,
                 offence_group: np.ndarray, remand_days: np.ndarray) -> np.ndarray:
    """Release day of each sentence under `rules` (int64 day numbers)."""
    if len(sentence_day) == 0:
        return np.zeros(0, dtype=np.int64)
    out = rules.release(np.asarray(sentence_day, dtype=np.int64),
                        np.asarray(length_days, dtype=np.int64),
                        np.asarray(offence_group, dtype=object),
                        np.asarray(remand_days, dtype=np.int64))
    return np.asarray(out.release_day, dtype=np.int64)
