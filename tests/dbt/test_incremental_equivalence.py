"""Incremental models built day by day hold exactly the rows of a full build.

What a Dagster partition run does to an incremental model (dbt `--vars` min_date/max_date, one
day) must, repeated over consecutive days, give the rows a full build with the wide default vars
gives. On the built warehouse:

1. every incremental model is fully refreshed with the default vars and copied (the reference);
2. 14 consecutive days in the middle of the simulated window are rebuilt, one dbt invocation a
   day, exactly as partitions: the models no other incremental model reads ("leaves") start
   from nothing (`--full-refresh` on the first day, so the first-build path runs too); the
   models other incremental models read keep their history and lose only those 14 days first,
   since their readers look back (trailing counts) into days before the first one;
3. each model's rows are compared with the reference both ways (EXCEPT ALL): the leaves over
   the days built, and they must hold nothing outside them; the kept models as whole tables (a
   day's run must not rewrite other days wrongly);
4. a final full refresh over the simulated days leaves the warehouse as the fixture built it.

A model's day column is the one its final rows are filtered on with `{{ in_window('<column>')
}}`; a model by period (agent_performance_monthly: a day's run rewrites its whole month) is
compared by the date column of its unique key, from the start of the first day's period.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.built_world import run_dbt
from warehouse import urls

pytestmark = pytest.mark.integration

DAYS = 14
IN_WINDOW = re.compile(r"""in_window\(\s*['"](?:\w+\.)?(\w+)['"]\s*\)""")
# Floats are summed in no fixed order: compared to 9 significant places; json has no equality.
FLOAT_TYPES = {"double precision", "real"}
PERIOD_DAYS = 31  # the longest period a model by period (a month) rewrites at once


def window_vars(first: date, last: date | None = None) -> str:
    """--vars for the half-open window [first, last or first + 1 day)."""
    end = last or first + timedelta(days=1)
    return json.dumps({"min_date": first.isoformat(), "max_date": end.isoformat()})


@dataclass(frozen=True)
class IncrementalModel:
    name: str
    schema: str
    alias: str
    day_column: str
    daily: bool  # the day column is what in_window() filters, else a coarser period's start
    leaf: bool  # no incremental model downstream of it

    @property
    def relation(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.alias)


def _downstream(child_map: dict[str, list[str]], node: str) -> set[str]:
    seen: set[str] = set()
    stack = list(child_map.get(node, []))
    while stack:
        child = stack.pop()
        if child not in seen:
            seen.add(child)
            stack.extend(child_map.get(child, []))
    return seen


def _day_column(node: dict, column_types: dict[str, str]) -> tuple[str, bool]:
    """The column the model's runs write by: the one its final rows are filtered on with
    in_window(), else the one date column of its unique key (a month's start, say, for a model
    whose run rewrites the whole period holding its window)."""
    filtered = set(IN_WINDOW.findall(node["raw_code"])) & column_types.keys()
    if len(filtered) == 1:
        return filtered.pop(), True
    unique_key = node["config"].get("unique_key") or []
    keyed = [unique_key] if isinstance(unique_key, str) else unique_key
    dates = [c for c in keyed if column_types.get(c) == "date"]
    assert len(dates) == 1, (
        f"{node['name']}: cannot tell which column its runs write by: in_window() filters "
        f"{sorted(filtered) or 'no column of the relation'}, date columns of the unique key: "
        f"{dates}"
    )
    return dates[0], False


def incremental_models(manifest: dict, conn: psycopg.Connection) -> list[IncrementalModel]:
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
        and node["package_name"] == "agent_mitra"
        and node["config"]["materialized"] == "incremental"
    }
    models = []
    for uid, node in sorted(nodes.items()):
        column_types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s",
                (node["schema"], node["alias"]),
            ).fetchall()
        )
        day_column, daily = _day_column(node, column_types)
        leaf = not (_downstream(manifest["child_map"], uid) & nodes.keys())
        models.append(
            IncrementalModel(node["name"], node["schema"], node["alias"], day_column, daily, leaf)
        )
    return models


def _select_list(conn: psycopg.Connection, model: IncrementalModel) -> sql.Composable:
    """The relation's columns, made comparable: floats rounded, json as text."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (model.schema, model.alias),
    ).fetchall()
    items = []
    for name, data_type in rows:
        column = sql.Identifier(name)
        if data_type in FLOAT_TYPES:
            item = sql.SQL("cast(cast({} as numeric(38, 9)) as text)").format(column)
        elif data_type == "json":
            item = sql.SQL("cast({} as jsonb)").format(column)
        else:
            item = column
        items.append(sql.SQL("{} as {}").format(item, column))
    return sql.SQL(", ").join(items)


def _difference(
    conn: psycopg.Connection,
    columns: sql.Composable,
    left: sql.Composable,
    right: sql.Composable,
    where: sql.Composable,
) -> tuple[int, list[tuple]]:
    """Rows of `left` not in `right` (EXCEPT ALL, duplicates counted), under `where`: how many,
    and up to three of them."""
    query = sql.SQL(
        "SELECT {columns} FROM {left} WHERE {where}"
        " EXCEPT ALL SELECT {columns} FROM {right} WHERE {where}"
    ).format(columns=columns, left=left, right=right, where=where)
    rows = conn.execute(sql.SQL("SELECT * FROM ({}) AS d").format(query)).fetchall()
    return len(rows), rows[:3]


@pytest.fixture
def dbt_target(tmp_path: Path) -> Path:
    return tmp_path / "target"


@pytest.fixture
def restored_afterwards(built_warehouse, dbt_target: Path) -> Iterator[None]:
    """Whatever happens in the test, the incremental models end as the fixture built them:
    rebuilt with the window of its backfill, the simulated days."""
    yield
    config = built_warehouse.config
    run_dbt(
        built_warehouse.warehouse_url,
        dbt_target,
        "run",
        "--select",
        "config.materialized:incremental",
        "--full-refresh",
        "--vars",
        window_vars(config.start, config.end),
    )


def _in_range(model: IncrementalModel, lower: date, end: date) -> sql.Composable:
    day = sql.Identifier(model.day_column)
    return sql.SQL("{} >= {} AND {} < {}").format(day, sql.Literal(lower), day, sql.Literal(end))


def test_day_by_day_equals_full_build(built_warehouse, dbt_target, restored_afterwards) -> None:
    config = built_warehouse.config
    url = built_warehouse.warehouse_url
    assert config.days >= DAYS, f"the fixture simulates {config.days} days, fewer than {DAYS}"
    first = config.start + timedelta(days=(config.days - DAYS) // 2)
    days = [first + timedelta(days=i) for i in range(DAYS)]
    end = days[-1] + timedelta(days=1)
    # A model by period (a month) rewrites, on the first day, the whole period holding it.
    period_floor = first - timedelta(days=PERIOD_DAYS)

    # 1. The reference: a full build with the default (wide) window, copied aside.
    run_dbt(url, dbt_target, "run", "--select", "config.materialized:incremental", "--full-refresh")
    manifest = json.loads((dbt_target / "manifest.json").read_text())
    with psycopg.connect(urls.libpq_url(url), autocommit=True) as conn:
        models = incremental_models(manifest, conn)
        assert models, "the project has no incremental model"
        everything = [m.name for m in models]
        leaves = [m.name for m in models if m.leaf]
        kept = [m.name for m in models if not m.leaf]
        for i, model in enumerate(models):
            conn.execute(
                sql.SQL("CREATE TEMP TABLE {} AS SELECT * FROM {}").format(
                    sql.Identifier(f"reference_{i}"), model.relation
                )
            )
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                    model.relation, _in_range(model, first if model.daily else period_floor, end)
                )
            ).fetchone()[0]
            assert count > 0, f"{model.name} has no row in {first}..{days[-1]}: nothing to compare"

        # 2. The days one at a time, as partitions.
        for model in models:
            if not model.leaf:
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {}").format(
                        model.relation, _in_range(model, first, end)
                    )
                )
        if kept:
            run_dbt(url, dbt_target, "run", "--select", *kept, "--vars", window_vars(first))
        if leaves:
            run_dbt(
                url,
                dbt_target,
                "run",
                "--select",
                *leaves,
                "--full-refresh",
                "--vars",
                window_vars(first),
            )
        for day in days[1:]:
            run_dbt(url, dbt_target, "run", "--select", *everything, "--vars", window_vars(day))

        # 3. Both ways, per model: the leaves over what their runs wrote, the others whole.
        problems = []
        for i, model in enumerate(models):
            where: sql.Composable = sql.SQL("true")
            if model.leaf:
                day = sql.Identifier(model.day_column)
                lower, upper, nulls = conn.execute(
                    sql.SQL("SELECT min({}), max({}), count(*) - count({}) FROM {}").format(
                        day, day, day, model.relation
                    )
                ).fetchone()
                expected_lower = (first, first) if model.daily else (period_floor, first)
                if (
                    nulls
                    or lower is None
                    or not (expected_lower[0] <= lower <= expected_lower[1] and upper < end)
                ):
                    problems.append(
                        f"{model.name}: the runs of {first}..{days[-1]} wrote {model.day_column}"
                        f" {lower}..{upper} ({nulls} null)"
                    )
                    continue
                where = _in_range(model, lower, end)
            columns = _select_list(conn, model)
            reference = sql.Identifier(f"reference_{i}")
            missing = _difference(conn, columns, reference, model.relation, where)
            extra = _difference(conn, columns, model.relation, reference, where)
            if missing[0] or extra[0]:
                problems.append(
                    f"{model.name}: {missing[0]} rows of the full build missing (e.g. "
                    f"{missing[1]}), {extra[0]} rows not in it (e.g. {extra[1]})"
                )
    assert not problems, "\n".join(problems)
