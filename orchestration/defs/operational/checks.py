"""great-expectations suites on the raw copies of the operational tables, as blocking checks.

The suites run inside PostgreSQL (a great-expectations SQL data source), so checking a table of
millions of premium dues moves no rows into Python. What each suite expects comes from the
operational models, the one definition of the schema: the key is present and unique, and every
enum column holds only the enum's values.
"""

from collections.abc import Iterator
from datetime import date

import dagster as dg
from sqlalchemy import Enum, Table

from orchestration.defs.ingest.expectations import CheckSuite, run_table_suites
from orchestration.resources import DatabasesResource
from warehouse import urls
from warehouse.extract import EXTRACT_TABLES
from warehouse.warehouse_ddl import raw_key

CHECK_NAME = "keys_and_accepted_values"


def _asset_key(table: Table) -> dg.AssetKey:
    return dg.AssetKey(["raw", table.name])


def expectations_for(table: Table) -> list:
    """Key not null and unique; enum columns within their values."""
    import great_expectations as gx

    key = raw_key(table)  # a tokenised key column is checked under its token's name
    out = [gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in key]
    if len(key) == 1:
        out.append(gx.expectations.ExpectColumnValuesToBeUnique(column=key[0]))
    for column in table.columns:
        if isinstance(column.type, Enum):
            out.append(
                gx.expectations.ExpectColumnValuesToBeInSet(
                    column=column.name, value_set=list(column.type.enums)
                )
            )
    return out


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            CHECK_NAME,
            asset=_asset_key(table),
            blocking=True,
            description="great-expectations: key present and unique, enum columns within the "
            "operational schema's values",
        )
        for table in EXTRACT_TABLES
    ],
    can_subset=True,
)
def operational_raw_checks(
    context: dg.AssetCheckExecutionContext, databases: DatabasesResource
) -> Iterator[dg.AssetCheckResult]:
    selected = {key.asset_key for key in context.selected_asset_check_keys}
    url = urls.psycopg2_url(databases.warehouse)
    for table in EXTRACT_TABLES:
        asset_key = _asset_key(table)
        if asset_key not in selected:
            continue
        suite = CheckSuite(CHECK_NAME, "", True, lambda _day, t=table: expectations_for(t))
        outcome = run_table_suites(url, "raw", table.name, [suite], date.today())[CHECK_NAME]
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=outcome.passed,
            metadata={
                "expectations": outcome.evaluated,
                "failures": dg.MetadataValue.json(outcome.failures),
            },
        )
