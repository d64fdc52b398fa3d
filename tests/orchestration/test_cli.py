"""The `mitra` command line: help, errors without tracebacks, database management."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _mitra(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
        timeout=120,
    )


def test_help_lists_the_commands() -> None:
    result = _mitra("--help")
    assert result.returncode == 0
    for command in ("db", "dbt", "materialize", "demo", "api", "ui"):
        assert command in result.stdout
    demo_help = _mitra("demo", "--help")
    assert "--no-serve" in demo_help.stdout


def test_production_with_dev_secrets_is_a_clear_error() -> None:
    result = _mitra("db", "status", env={"MITRA_ENV": "production"})
    assert result.returncode == 1
    assert "mitra: error: invalid settings: MITRA_ENV=production refuses" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_up_status_down_on_the_embedded_server() -> None:
    home = Path(tempfile.mkdtemp(prefix="mitra-cli-"))
    env = {"MITRA_HOME": str(home)}
    for name in ("MITRA_OPERATIONAL_URL", "MITRA_WAREHOUSE_URL", "MITRA_DAGSTER_URL"):
        env[name] = ""
    try:
        up = _mitra("db", "up", env=env)
        assert up.returncode == 0, up.stderr
        assert "agent_mitra_wh" in up.stdout
        status = _mitra("db", "status", env=env)
        assert "running" in status.stdout
        down = _mitra("db", "down", env=env)
        assert down.stdout.strip() == "stopped"
        assert "stopped" in _mitra("db", "status", env=env).stdout
    finally:
        _mitra("db", "down", env=env)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("blocked", [True])
def test_db_up_that_cannot_start_prints_one_line(blocked: bool) -> None:
    home = Path(tempfile.mkdtemp(prefix="mitra-cli-"))
    (home / "pg").write_text("not a directory")
    try:
        result = _mitra("db", "up", env={"MITRA_HOME": str(home / "pg" / "x")})
        assert result.returncode == 1
        assert result.stderr.startswith("mitra: error: could not start the embedded PostgreSQL")
        assert "Traceback" not in result.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_dagster_definitions_validate_with_the_project_instance(
    make_database, operational_url: str, warehouse_url: str, tmp_path: Path
) -> None:
    """The real `dagster` CLI loads the code location against the PostgreSQL-backed instance."""
    from orchestration.instance import dagster_environment
    from warehouse.settings import Settings

    settings = Settings(
        home=tmp_path,
        operational_url=operational_url,
        warehouse_url=warehouse_url,
        dagster_url=make_database("dagster"),
    )
    env = {**os.environ, **dagster_environment(settings), "PYTHONPATH": str(REPO_ROOT)}
    # Run outside the checkout so a developer's generated .env cannot override these settings.
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "orchestration.definitions",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


def test_an_unreachable_database_is_one_line() -> None:
    result = _mitra(
        "simulate",
        "--days",
        "1",
        env={"MITRA_OPERATIONAL_URL": "postgresql://postgres@127.0.0.1:1/x"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("mitra: error: cannot reach the database: connection failed")
    assert "Traceback" not in result.stderr
