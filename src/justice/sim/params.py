"""The options of one simulation run, declared as data so every knob is documented in one place."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from justice.errors import SimulationError

MESS_LEVELS = ("low", "default", "high")
REFERRAL_MODES = ("recorded", "latent")


@dataclass(frozen=True, kw_only=True)
class SimulationParams:
    """Everything that determines a simulated world; the same params give byte-identical output.

    Example::

        SimulationParams(persons=5_000, seed=7, start=dt.date(2014, 1, 1), end=dt.date(2025, 12, 31))
    """

    persons: int = 5_000
    """How many people the world holds: everyone with at least one record active in the window."""

    seed: int = 1
    """Seed of every random draw. Each part of the world draws from its own child stream."""

    start: dt.date = dt.date(2014, 1, 1)
    """First day of the window the legacy systems cover."""

    end: dt.date = dt.date(2025, 12, 31)
    """Last day of the window; nothing happens after it."""

    burn_in_years: int = 20
    """Years simulated before `start` so that careers, caseloads and prisons are in a steady
    state on the first day; records from then are kept only if still active at `start`. Twenty
    years, because the prison population holds lifers and IPP prisoners sentenced that long
    before (a murderer's minimum term is ~18 years, released ~3.5 years after it): with five,
    the 2025 population lacked them and releases per 1,000 prisoners ran ~20% high."""

    intervention_effect: float = -0.05
    """True absolute change in the one-year proven reoffending probability of programme
    participants (e.g. -0.05 is five percentage points fewer reoffenders)."""

    referral: str = "latent"
    """What decides who is referred to a programme: `recorded` (only what the legacy extracts
    show: age, sex, disposal, custody length, index offence group, proven offences since the
    window start) or `latent` (those plus propensity and the whole record, which no extract
    shows, so matching on records cannot remove the selection)."""

    mess: str = "default"
    """How messy the legacy extracts are: one of low, default, high."""

    prisons: int | None = None
    """Number of establishments; by default one per ~720 simulated prisoners (at least 3)."""

    world_file: str | None = None
    """A YAML file overriding any behavioural rate of `reference/world.yaml` (same keys)."""

    policy_files: tuple[str, ...] = ()
    """Release-rule files (justice.policy format, docs/policy-rules.md) added to the package's
    rules in order; a file's `withdraw:` list removes rules loaded before it."""

    withdrawn_rules: tuple[str, ...] = ()
    """Names of release or recall rules left out (e.g. `sds40`: the world without that policy)."""

    def __post_init__(self) -> None:
        # Lists from JSON or the command line are kept as tuples so params stay hashable.
        object.__setattr__(self, "policy_files", tuple(str(f) for f in self.policy_files))
        object.__setattr__(self, "withdrawn_rules", tuple(self.withdrawn_rules))
        if self.persons < 100:
            raise SimulationError(f"--persons {self.persons}: at least 100 people are needed")
        if self.end <= self.start:
            raise SimulationError(f"--end {self.end} must be after --start {self.start}")
        if (self.end - self.start).days < 365:
            raise SimulationError("the window from --start to --end must be at least a year")
        if not -1.0 < self.intervention_effect < 1.0:
            raise SimulationError(
                f"--intervention-effect {self.intervention_effect}: an absolute change in a "
                "probability must lie between -1 and 1"
            )
        if self.referral not in REFERRAL_MODES:
            raise SimulationError(
                f"--referral {self.referral!r}: choose one of {', '.join(REFERRAL_MODES)}")
        if self.mess not in MESS_LEVELS:
            raise SimulationError(f"--mess {self.mess!r}: choose one of {', '.join(MESS_LEVELS)}")
        if self.burn_in_years < 0:
            raise SimulationError("burn_in_years cannot be negative")
        if self.prisons is not None and self.prisons < 1:
            raise SimulationError(f"--prisons {self.prisons}: at least one establishment")

    def to_json_dict(self) -> dict:
        """The params as JSON-ready values (dates as ISO strings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, dt.date) else value
        return out


def documented_fields() -> dict[str, str]:
    """Each parameter's name and the docstring written under it (used by `--help` and tests)."""
    import ast
    import inspect
    import itertools

    source = inspect.getsource(SimulationParams)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())  # type: ignore[union-attr]
    return docs


