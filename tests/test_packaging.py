"""The package's data files (templates, styles, specs, dbt models) ship in an installed wheel."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_data_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "src/justice"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return [f for f in out if not f.endswith(".py")]


def test_every_data_file_in_the_package_matches_a_package_data_pattern():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["justice"]
    # Every pattern is "**/*.ext": an installed wheel carries each extension listed, in any folder.
    assert all(p.startswith("**/*.") for p in patterns), patterns
    shipped = {p.removeprefix("**/*.") for p in patterns}
    files = _tracked_data_files()
    assert files, "git ls-files found no data files under src/justice"
    missing = sorted(f for f in files if Path(f).suffix.removeprefix(".") not in shipped)
    assert not missing, f"not in pyproject's package-data, so missing from a wheel: {missing}"
