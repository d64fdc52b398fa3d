"""Bump the marts version (`ops.marts_version`) as soon as a step has written what the API serves.

The API keys its cached answers by that version (see `warehouse.marts_version`), so the bump is
what makes the next answer after a refresh the new one. Why step hooks on the jobs rather than
a run-status sensor or an asset downstream of the marts:

- a hook runs in the run itself, right after the step, so there is no window (a sensor tick,
  30 s by default, and only while the daemon runs) in which fresh marts are hidden behind old
  answers, and `mitra demo`, tests and `execute_in_process` bump too;
- a hook fires for any subset of the job (the demo scores in a second run of the same job;
  a retry re-runs only the failed steps), which an asset downstream of every mart would miss;
- it fires on failure as well: a dbt step that fails half way has still rebuilt some marts.

A step counts when it materialised an asset under `marts/` or `ml/` (the dbt marts, the lapse
scores and recommendations, the models and their registry, which the insights read), as recorded
in the run's event log; ingest and staging steps do not bump. Materialisations launched outside
these jobs (an ad-hoc launch from the UI) are covered by the answers' TTL only.
"""

import dagster as dg

from orchestration.resources import DatabasesResource
from warehouse.marts_version import bump_marts_version
from warehouse.settings import get_settings

# Asset key prefixes whose tables the API serves.
SERVED_PREFIXES = frozenset({"marts", "ml"})


class RedisResource(dg.ConfigurableResource):
    """Where the API's Redis is, to mirror the version into. Left empty, `REDIS_URL` from the
    platform settings, read when a run needs it; neither set means no mirror (the API then
    reads the warehouse row)."""

    url: str | None = None

    def resolved_url(self) -> str | None:
        return self.url or get_settings().redis_url


def served_assets_written(context: dg.HookContext) -> list[dg.AssetKey]:
    """The `marts/` and `ml/` assets this step materialised, from the run's event log."""
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return [
        key
        for record in records
        if record.event_log_entry.step_key == context.step_key
        and (key := record.event_log_entry.dagster_event.asset_key) is not None  # type: ignore[union-attr]
        and key.path[0] in SERVED_PREFIXES
    ]


def bump_after_step(context: dg.HookContext) -> int | None:
    """Bump when the step wrote served tables; returns the new version (None: nothing to do).

    A failure is logged as an error in the run, not raised (a hook cannot fail its step): if
    only the Redis mirror failed, the warehouse row has moved on and the API re-reads it when the
    mirror expires; otherwise the answers' TTL bounds how long old answers are served.
    """
    written = served_assets_written(context)
    if not written:
        return None
    databases: DatabasesResource = context.resources.databases
    redis: RedisResource = context.resources.redis
    try:
        marts = bump_marts_version(
            databases.warehouse, run_id=context.run_id, redis_url=redis.resolved_url()
        )
    except Exception as exc:
        context.log.error(
            f"marts version not bumped after {context.step_key}: {type(exc).__name__}: {exc}"
        )
        return None
    context.log.info(
        f"marts version {marts.version} after {context.step_key} wrote "
        + ", ".join(key.to_user_string() for key in written[:5])
        + (f" and {len(written) - 5} more" if len(written) > 5 else "")
    )
    return marts.version


@dg.success_hook(
    name="bump_marts_version_on_success", required_resource_keys={"databases", "redis"}
)
def bump_on_success(context: dg.HookContext) -> None:
    bump_after_step(context)


@dg.failure_hook(
    name="bump_marts_version_on_failure", required_resource_keys={"databases", "redis"}
)
def bump_on_failure(context: dg.HookContext) -> None:
    bump_after_step(context)


# Attach to every job that writes marts or ml tables: `define_asset_job(..., hooks=...)`.
MARTS_VERSION_HOOKS = frozenset({bump_on_success, bump_on_failure})
