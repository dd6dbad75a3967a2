"""Find a cohort file's participants in the justice system's records (the person index).

    identification = identify(settings, read_cohort(path))
    identification.match_rate, identification.counts, identification.participants

Each row is scored against the person index with the linkage model (justice.link.explain, all
rows in one batch), leaving out candidates from the ``interventions`` system: providers' own
participant lists are in the index too, and a participant must be found in the courts', prisons'
or probation's records, not in the list they came from. Per row: the best person and weight, the
runner-up (the best candidate of a different person) and a status:

* ``matched``: the best weight is at or above the model's threshold, at least DOUBTFUL_MARGIN
  above it, and no other person comes within DOUBTFUL_MARGIN of it;
* ``doubtful``: at or above the threshold but not clearly (either margin under
  DOUBTFUL_MARGIN); reported, and left out of the analysis unless ``include_doubtful``;
* ``unmatched``: no candidate at or above the threshold;
* ``repeat``: the same person and the same programme start as an earlier row (the same
  participation entered twice): the first row is kept.

A person on the programme twice (two rows, two starts) is two participations, each measured from
the sentence or release it belongs to, as the comparison pool is made of index events and not of
people: keeping only a person's earliest start would keep, for everyone who came back, a start
followed by another sentence, which is a choice made on the outcome. Two starts that belong to
the same sentence or release are one participation (`groups` keeps the earliest).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from justice.errors import CohortError
from justice.evaluate.cohort import CohortFile, CohortProblem, Participant
from justice.link.explain import Scorer
from justice.settings import Settings

MIN_MATCHED = 60
"""A Justice Data Lab request needs at least this many people found in the records."""
DOUBTFUL_MARGIN = 2.0
"""Match-weight margin (log2 odds: a factor of 4) under which a match is called doubtful."""
EXCLUDED_SYSTEMS = ("interventions",)
STATUSES = ("matched", "doubtful", "unmatched", "repeat")


@dataclass(frozen=True)
class IdentifiedRow:
    """One cohort row's identification."""

    participant: Participant
    status: str
    person_id: str | None
    """The best candidate's person (set for every status but unmatched)."""
    match_weight: float | None
    runner_up_person_id: str | None
    runner_up_weight: float | None
    note: str = ""

    @property
    def row(self) -> int:
        return self.participant.row


@dataclass(frozen=True)
class MatchedParticipant:
    """A participation taken into the analysis: the person and the programme's start."""

    person_id: str
    start_date: dt.date
    row: int
    status: str


@dataclass
class Identification:
    """The cohort's rows identified, and who goes into the analysis."""

    cohort: CohortFile
    rows: list[IdentifiedRow]
    threshold: float
    min_matched: int
    include_doubtful: bool

    @property
    def counts(self) -> dict[str, int]:
        """Rows by status, the rows read, and the distinct people taken into the analysis."""
        by = Counter(r.status for r in self.rows)
        return {"rows": len(self.rows), **{s: by.get(s, 0) for s in STATUSES},
                "people": len({p.person_id for p in self.participants})}

    @property
    def match_rate(self) -> float:
        """Share of rows matched to a person (a repeat of a person counts as matched)."""
        found = sum(r.status in ("matched", "repeat") for r in self.rows)
        return found / len(self.rows) if self.rows else 0.0

    @property
    def participants(self) -> list[MatchedParticipant]:
        """One entry per participation taken into the analysis (a person on the programme
        twice is there twice, once per start)."""
        used = ("matched", "doubtful") if self.include_doubtful else ("matched",)
        return [MatchedParticipant(r.person_id, r.participant.start_date, r.row, r.status)
                for r in self.rows if r.status in used]


def probe_record(p: Participant) -> dict:
    """A participant's identity as a record for the scorer."""
    return {"forenames": p.forenames, "surname": p.surname,
            "dob": p.dob.isoformat() if p.dob else None, "sex": p.sex, "pnc": p.pnc,
            "prison_number": p.prison_number}


def _status(best: float | None, runner_up: float | None, threshold: float) -> str:
    if best is None or best < threshold:
        return "unmatched"
    if best - threshold < DOUBTFUL_MARGIN:
        return "doubtful"
    if runner_up is not None and best - runner_up < DOUBTFUL_MARGIN:
        return "doubtful"
    return "matched"


def identify(settings: Settings, cohort: CohortFile, *, min_matched: int = MIN_MATCHED,
             include_doubtful: bool = False, scorer: Scorer | None = None) -> Identification:
    """Identify every cohort row in the person index; raise CohortError (with the
    Identification as its ``identification``) if fewer than `min_matched` people are found."""
    own = scorer is None
    scorer = scorer or Scorer(settings)
    try:
        results = scorer.score_many([probe_record(p) for p in cohort.rows], top=None,
                                    exclude_systems=EXCLUDED_SYSTEMS, explain=False)
        threshold = scorer.threshold
    finally:
        if own:
            scorer.close()
    rows: list[IdentifiedRow] = []
    for participant, result in zip(cohort.rows, results):
        best = result.best
        runner = None
        if best is not None:
            best_key = best.person_id or best.unique_id
            runner = next((c for c in result.candidates
                           if (c.person_id or c.unique_id) != best_key), None)
        best_w = best.match_weight if best else None
        runner_w = runner.match_weight if runner else None
        status = _status(best_w, runner_w, threshold)
        note = ""
        if status == "doubtful":
            note = (f"weight {best_w:.1f} is within {DOUBTFUL_MARGIN} of the threshold "
                    f"{threshold:.1f}" if best_w - threshold < DOUBTFUL_MARGIN else
                    f"another person scores {runner_w:.1f}, within {DOUBTFUL_MARGIN} of "
                    f"{best_w:.1f}")
        rows.append(IdentifiedRow(participant, status, best.person_id if best else None, best_w,
                                  runner.person_id if runner else None, runner_w, note))
    rows = _mark_repeats(rows, include_doubtful)
    identification = Identification(cohort, rows, threshold, min_matched, include_doubtful)
    people = identification.counts["people"]
    if people < min_matched:
        counts = identification.counts
        error = CohortError(
            f"cohort file {cohort.path.name}: only {people} of {len(rows)} rows were found in the "
            f"justice system's records ({counts['matched']} matched, {counts['doubtful']} "
            f"doubtful, {counts['unmatched']} unmatched, {counts['repeat']} repeats); an "
            f"evaluation needs at least {min_matched} people",
            [CohortProblem(None, None, f"{people} people matched; at least {min_matched} needed")])
        error.identification = identification
        raise error
    return identification


def _mark_repeats(rows: list[IdentifiedRow], include_doubtful: bool) -> list[IdentifiedRow]:
    """Rows matching the same person with the same start keep the first row; the others become
    ``repeat``, naming the row kept. The same person with another start is another
    participation."""
    used = ("matched", "doubtful") if include_doubtful else ("matched",)
    kept: dict[tuple[str, dt.date], IdentifiedRow] = {}
    for r in sorted((r for r in rows if r.status in used), key=lambda r: r.row):
        kept.setdefault((r.person_id, r.participant.start_date), r)
    out = []
    for r in rows:
        first = (kept.get((r.person_id, r.participant.start_date)) if r.status in used
                 else None)
        if first is not None and first is not r:
            r = IdentifiedRow(r.participant, "repeat", r.person_id, r.match_weight,
                              r.runner_up_person_id, r.runner_up_weight,
                              f"the same person and start as row {first.row}, which is kept")
        out.append(r)
    return out
