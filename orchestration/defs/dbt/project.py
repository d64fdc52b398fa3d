"""The dbt project, built lazily so importing the code runs nothing (STYLE.md).

The manifest is prepared at build or test time (`mitra dbt parse`, run by `make`), never at import;
`dagster dev` prepares it itself through `prepare_if_dev`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from warehouse import urls

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
# The dbt installed beside this interpreter, whatever PATH says (a venv need not be activated).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")
# No telemetry, no version check against the internet, the project's own profiles.yml.
DBT_CLI_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_VERSION_CHECK": "false",
    "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
}


def run_dbt_cli(
    args: list[str], warehouse_url: str | None = None, *, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """The dbt CLI in `dbt_project/`, profiles.yml filled from `warehouse_url` (None for
    commands that need no database, such as `parse`). The one way the CLI, tests and benchmarks
    run dbt outside Dagster; the caller decides what a failure means."""
    env = {**os.environ, **DBT_CLI_ENV, **(urls.dbt_env(warehouse_url) if warehouse_url else {})}
    return subprocess.run(  # noqa: S603 - fixed executable; arguments are the caller's own
        [DBT_EXECUTABLE, *args],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=capture,
        text=True,
        check=False,
    )


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project
