"""axe-core on a Playwright page: WCAG 2.2 AA and best practices, zero violations allowed.

    from axe import assert_accessible
    assert_accessible(page, "sign-in page")

axe-core is the npm package installed by ``make setup`` (node_modules/axe-core/axe.min.js),
read from disk and evaluated in the page: nothing is fetched from another site. It is evaluated
through the DevTools protocol rather than added as a <script> element, so the service's
Content-Security-Policy (no inline script) stays on and is tested too.

A failure lists every violation: the rule id, its impact, what it asks (``help``), where to read
more, and each offending node's CSS selector and axe's summary of how to fix it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

# WCAG 2.0, 2.1 and 2.2, levels A and AA (axe has no A-level rule new in 2.2): no exceptions.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
# And axe's best practices, less the ones the service is known to break, each with why. Every
# entry has an xfail(strict) test in test_browser.py that starts failing once it is fixed, so the
# exception is removed then.
TAGS = (*WCAG_TAGS, "best-practice")
KNOWN_BEST_PRACTICE_GAPS = {
    "region": ("layout.html puts the phase banner and the 'Data as at' line between <header> "
               "and <main>, outside every landmark (GOV.UK Frontend 6 moves the phase banner "
               "into <header>: alphagov/govuk-frontend#6460)"),
}


@cache
def axe_source() -> str:
    """The axe-core script, read once."""
    if not AXE_SCRIPT.is_file():
        raise FileNotFoundError(f"{AXE_SCRIPT} is missing: run `make setup` (npm install)")
    return AXE_SCRIPT.read_text(encoding="utf-8")


def run_axe(page, tags: tuple[str, ...] = TAGS, *, skip: tuple[str, ...] = tuple(
        KNOWN_BEST_PRACTICE_GAPS), only_rules: tuple[str, ...] = ()) -> list[dict]:
    """axe's violations on the page as it is now, for the rules of `tags` less `skip` (or, if
    given, exactly `only_rules`); axe is injected first if the page lacks it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    if only_rules:
        options = {"runOnly": {"type": "rule", "values": list(only_rules)}}
    else:
        options = {"runOnly": {"type": "tag", "values": list(tags)},
                   "rules": {rule: {"enabled": False} for rule in skip}}
    options["resultTypes"] = ["violations"]
    results = page.evaluate("options => window.axe.run(document, options)", options)
    return results["violations"]


def describe(violations: list[dict]) -> str:
    """Each violation as readable lines: rule, impact, help, and every node's target."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v.get('impact') or 'no impact given'}): {v['help']}"
                     f"  [{v['helpUrl']}]")
        for node in v["nodes"]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    at {json.dumps(node['target'])}: {summary}")
            lines.append(f"       {node.get('html', '')[:200]}")
    return "\n".join(lines)


def assert_accessible(page, what: str, tags: tuple[str, ...] = TAGS, *,
                      skip: tuple[str, ...] = tuple(KNOWN_BEST_PRACTICE_GAPS),
                      only_rules: tuple[str, ...] = ()) -> None:
    """Fail, listing every violation, unless axe finds none on `page` (`what` names it)."""
    violations = run_axe(page, tags, skip=skip, only_rules=only_rules)
    if violations:
        print(f"axe violations on {what} ({page.url}):\n{describe(violations)}")
    assert not violations, (f"{len(violations)} accessibility rule(s) broken on {what} "
                            f"({page.url}):\n{describe(violations)}")
