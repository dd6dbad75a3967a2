"""Errors a user of the platform can catch.

The tree::

    JusticeError                  base of everything the platform raises on purpose
    ├── ConfigError               a setting, option or reference-data file is wrong
    │   └── PolicyError           a release or recall rule file is invalid (file, rule, what)
    ├── SimulationError           the simulator was asked for something it cannot make
    ├── SourceError               a legacy source cannot be read as its spec says
    │   ├── CopybookError         a COBOL copybook cannot be parsed or does not fit a record
    │   └── SchemaDriftError      a source's columns differ from its spec
    ├── TransformError            a dbt model or test failed (the message names which)
    ├── CohortError               a provider's cohort file cannot be evaluated (every problem,
    │                             each with its row and column; or too few people identified)
    ├── AccountError              a safety-service account cannot be made or changed as asked
    └── QueryError                a statistics-explorer query names what its dataset lacks or
                                  asks for too much (the parameter, and what it may be)

Every message says what was wrong, where (file, line, column or option) and what to do.
"""

from __future__ import annotations


class JusticeError(Exception):
    """Base class of every error the platform raises on purpose."""


class ConfigError(JusticeError):
    """A setting, command-line option or reference-data file is invalid."""


class PolicyError(ConfigError):
    """A release or recall rule file (justice.policy) is invalid: overlapping rules, an unknown
    offence group, dates out of order, a fraction outside (0, 1], a missing legal source or an
    unknown key. ``file`` and ``rule`` say where (either may be None); the message says both."""

    def __init__(self, message: str, *, file: str | None = None, rule: str | None = None) -> None:
        where = ": ".join(part for part in (file, f"rule {rule!r}" if rule else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.rule = rule


class SimulationError(JusticeError):
    """The simulator cannot produce what was asked (e.g. impossible options)."""


class SourceError(JusticeError):
    """A legacy source cannot be read as its spec says."""


class CopybookError(SourceError):
    """A COBOL copybook cannot be parsed, or a record does not fit its layout."""


class SchemaDriftError(SourceError):
    """A source's columns differ from what its spec declares."""


class TransformError(JusticeError):
    """A dbt model or data test failed; the message names the nodes and dbt's log has the rest."""


class AccountError(JusticeError):
    """A safety-service user account cannot be created or changed as asked (unknown role or
    prison, a password too short, a name taken or not found)."""


class CohortError(JusticeError):
    """A provider's cohort (participant) file cannot be evaluated: it is unreadable, its columns
    are missing or misnamed, rows hold bad or future dates or duplicates, or too few of its people
    are found in the justice system's records. ``problems`` lists every
    :class:`justice.evaluate.cohort.CohortProblem` found (row, column, message), not just the
    first; the message lists them too."""

    def __init__(self, message: str, problems: list | tuple = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class QueryError(JusticeError):
    """A table query names something its dataset does not have, or asks for too much; the
    message says which parameter and what it may be (the explorer answers 400 with it)."""
