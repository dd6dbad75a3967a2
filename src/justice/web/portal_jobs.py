"""The provider portal's background work: evaluations one at a time, and the retention purge.

`PortalRunner` is one daemon thread per web process. It claims the oldest queued submission
(`portal_store.claim_next`: two processes on one PostgreSQL store never take the same one),
decrypts its upload into a private folder on a memory file system, runs
`justice.evaluate.run.evaluate` and writes the report, recording each stage in the store for the
submission's page. It wakes when an upload is queued (`wake`) and otherwise every
`poll_seconds`; it purges files past the retention period when it starts and every
`purge_seconds` after.

One at a time because an evaluation uses the machine's cores through DuckDB and pandas; a queue
of several waits its turn, each page saying so.
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from justice.errors import CohortError, JusticeError
from justice.settings import Settings
from justice.web import portal_store as store

log = logging.getLogger(__name__)

STAGE_EVALUATING = ("Finding the participants in the justice system's records and matching a "
                    "comparison group")
STAGE_WRITING = "Writing the report"


def run_submission(settings: Settings, engine: sa.Engine, submission_id: str) -> str:
    """Evaluate one claimed (running) submission and record the outcome; ``done`` or
    ``failed``."""
    from justice.evaluate.run import EvaluationOptions, evaluate, write_report

    with engine.connect() as conn:
        row = store.get_submission(conn, submission_id)
    if row is None:
        return "failed"
    try:
        data = store.read_upload(settings, submission_id)
        options = EvaluationOptions(exclude_bad_rows=row["exclude_bad_rows"])
        store.set_stage(engine, submission_id, STAGE_EVALUATING)
        with store.plain_copy(data, row["file_name"], row["file_kind"]) as path:
            evaluation = evaluate(settings, path, programme=row["programme"], options=options)
        del data
        store.set_stage(engine, submission_id, STAGE_WRITING)
        # The report is for the provider: which of its rows were found, never whom they were
        # found to be (the person ids of the justice system's records).
        evaluation.identification_table = evaluation.identification_table.drop(
            columns=["person_id"], errors="ignore")
        if row["organisation"]:
            # The organisation the submission is for (a provider account's own), whatever the
            # file's "Provider:" line says or when it has none.
            evaluation.summary["provider"] = row["organisation"]
        write_report(evaluation, store.report_dir(settings, submission_id))
    except CohortError as exc:
        # About the file or its people (too few found): the sender can act on it.
        store.finish(engine, submission_id, "failed", error=_cohort_message(exc),
                     error_detail=str(exc))
        return "failed"
    except JusticeError as exc:
        log.warning("portal: the evaluation of submission %s failed: %s", submission_id, exc)
        store.finish(engine, submission_id, "failed",
                     error="The service could not run the evaluation. Your file is kept; an "
                           "analyst can see why. Try again later.",
                     error_detail=str(exc))
        return "failed"
    except Exception as exc:
        log.exception("portal: the evaluation of submission %s crashed", submission_id)
        store.finish(engine, submission_id, "failed",
                     error="Sorry, there was a problem with the service and the evaluation did "
                           "not finish. Try again later.",
                     error_detail=f"{exc.__class__.__name__}: {exc}")
        return "failed"
    store.finish(engine, submission_id, "done")
    return "done"


def _cohort_message(exc: CohortError) -> str:
    # The first line is the summary; the problems follow, as the page lists them.
    problems = [str(p) for p in exc.problems][:20]
    first = str(exc).splitlines()[0]
    return "\n".join([first, *problems]) if problems else str(exc)


class PortalRunner:
    """Runs queued evaluations in a background thread, one at a time, and purges old files."""

    def __init__(self, settings: Settings, engine: sa.Engine, *, poll_seconds: float = 5.0,
                 purge_seconds: float = 3600.0) -> None:
        self.settings = settings
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.purge_seconds = purge_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> PortalRunner:
        """Start the thread (once; a second call does nothing while it runs)."""
        with self._lock:
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._loop, name="portal-runner",
                                                daemon=True)
                self._thread.start()
        return self

    def wake(self) -> None:
        """Look for queued work now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the evaluation in hand (if any) and wait up to `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_pending(self) -> list[tuple[str, str]]:
        """Run every queued submission now, in this thread; (id, outcome) of each."""
        done = []
        while not self._stop.is_set():
            submission_id = store.claim_next(self.engine)
            if submission_id is None:
                break
            done.append((submission_id, run_submission(self.settings, self.engine,
                                                       submission_id)))
        return done

    def purge(self) -> list[str]:
        """Delete files past the retention period; fail evaluations a stopped process left."""
        store.fail_interrupted(self.engine)
        return store.purge_expired(self.settings, self.engine)

    def _loop(self) -> None:
        next_purge = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_purge:
                    self.purge()
                    next_purge = time.monotonic() + self.purge_seconds
                self.run_pending()
            except Exception:
                # The thread must outlive a store that is briefly away; the next poll retries.
                log.exception("portal: the background runner failed; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
