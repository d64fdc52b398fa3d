"""The dbt project, built lazily so importing the code runs nothing (STYLE.md).

The manifest is prepared at build or test time (`mitra dbt parse`, run by `make`), never at import;
`dagster dev` prepares it itself through `prepare_if_dev`.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"
# The dbt installed beside this interpreter, whatever PATH says (a venv need not be activated).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    project.prepare_if_dev()
    return project
