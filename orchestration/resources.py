"""Dagster resources shared by the asset groups."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import PrivateAttr

from warehouse import urls
from warehouse.databases import Role, resolve_database_url
from warehouse.settings import get_settings


class DatabasesResource(dg.ConfigurableResource):
    """Where the operational database and the warehouse are.

    Left empty, each URL comes from the platform settings (`MITRA_OPERATIONAL_URL`,
    `MITRA_WAREHOUSE_URL`, else the embedded server), resolved when a run first needs it and never
    at import. Tests pass explicit URLs.
    """

    operational_url: str | None = None
    warehouse_url: str | None = None

    _cache: dict[str, str] = PrivateAttr(default_factory=dict)

    def _url(self, role: Role) -> str:
        if role not in self._cache:
            explicit = getattr(self, f"{role}_url")
            self._cache[role] = explicit or resolve_database_url(get_settings(), role)
        return self._cache[role]

    @property
    def operational(self) -> str:
        return self._url("operational")

    @property
    def warehouse(self) -> str:
        return self._url("warehouse")

    @contextmanager
    def dbt_environment(self) -> Iterator[None]:
        """Set the variables `dbt_project/profiles.yml` reads while dbt runs, then restore them."""
        values = urls.dbt_env(self.warehouse)
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
