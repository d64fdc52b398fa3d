"""Dagster resources shared by the asset groups."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from orchestration.instance import environment
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

    def dbt_environment(self) -> AbstractContextManager[None]:
        """The variables `dbt_project/profiles.yml` reads, set while dbt runs."""
        return environment(urls.dbt_env(self.warehouse))


class LandingResource(dg.ConfigurableResource):
    """The landing zone and the secrets ingestion needs (webhook app secret, PII key).

    Left empty, each comes from the platform settings (`MITRA_LANDING_URL`,
    `WHATSAPP_APP_SECRET`, `MITRA_PII_KEY`), read when a run needs it.
    """

    root: str | None = None
    app_secret: str | None = None
    pii_key: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.root) if self.root else get_settings().landing_root

    @property
    def app_secret_bytes(self) -> bytes:
        return (self.app_secret or get_settings().whatsapp_app_secret.get_secret_value()).encode()

    @property
    def pii_key_bytes(self) -> bytes:
        return (self.pii_key or get_settings().pii_key.get_secret_value()).encode()
