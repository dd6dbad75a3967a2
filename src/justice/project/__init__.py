"""Prison population projections: from the people in custody on an origin day and recent flows,
month by month, under the release rules as data and under scenarios.

Example::

    from justice.project import project
    result = project(settings, ["sds45.yaml"], months=24, repetitions=100, out=folder)
    print("\\n".join(result.summary))

Modules: `data` (the warehouse as at the origin), `flows` (rates and stay distributions learnt
from it), `engine` (the Monte Carlo microsimulation), `results` (counts and tidy tables),
`scenario` (scenario files), `rules` (release dates from justice.policy), `outputs` (files,
fan chart, summary), `projection` (`project()` tying them together).
"""

from .projection import Projection, project
from .scenario import BASELINE, Scenario, ScenarioError, load_scenario

__all__ = ["BASELINE", "Projection", "Scenario", "ScenarioError", "load_scenario", "project"]
