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

# WCAG 2.0, 2.1 and 2.2, levels A and AA (axe has no A-level rule new in 2.2), and axe's best
# practices: no rule is left out.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
TAGS = (*WCAG_TAGS, "best-practice")


@cache
def axe_source() -> str:
    """The axe-core script, read once."""
    if not AXE_SCRIPT.is_file():
        raise FileNotFoundError(f"{AXE_SCRIPT} is missing: run `make setup` (npm install)")
    return AXE_SCRIPT.read_text(encoding="utf-8")


def run_axe(page, tags: tuple[str, ...] = TAGS) -> list[dict]:
    """axe's violations of the rules of `tags` on the page as it is now (axe is injected first
    if the page lacks it)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    return page.evaluate("options => window.axe.run(document, options)", options)["violations"]


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


def assert_accessible(page, what: str, tags: tuple[str, ...] = TAGS) -> None:
    """Fail, listing every violation, unless axe finds none on `page` (`what` names it)."""
    violations = run_axe(page, tags)
    if violations:
        print(f"axe violations on {what} ({page.url}):\n{describe(violations)}")
    assert not violations, (f"{len(violations)} accessibility rule(s) broken on {what} "
                            f"({page.url}):\n{describe(violations)}")
