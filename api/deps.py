"""Request dependencies: settings and database engines, overridable in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from warehouse.settings import Settings


@dataclass(frozen=True)
class Engines:
    """One engine per database the API reads (the operational store and the warehouse), and the
    asyncio pool of the operational store's hot reads (`api.db.scoped_rows`)."""

    operational: Engine
    warehouse: Engine
    operational_reads: AsyncConnectionPool

    def as_dict(self) -> dict[str, Engine]:
        return {"operational": self.operational, "warehouse": self.warehouse}

    async def dispose(self) -> None:
        await self.operational_reads.close()
        self.operational.dispose()
        self.warehouse.dispose()


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engines(request: Request) -> Engines:
    return request.app.state.engines


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EnginesDep = Annotated[Engines, Depends(get_engines)]
