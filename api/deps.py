"""Request dependencies: settings and database engines, overridable in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from api.event_intake import EventIntake
from warehouse.settings import Settings


@dataclass(frozen=True)
class Engines:
    """One engine per database the API reads (the operational store and the warehouse), and an
    asyncio pool beside each for the hot reads (`api.db.read_together`)."""

    operational: Engine
    warehouse: Engine
    operational_reads: AsyncConnectionPool
    warehouse_reads: AsyncConnectionPool

    def as_dict(self) -> dict[str, Engine]:
        return {"operational": self.operational, "warehouse": self.warehouse}

    async def open_pools(self) -> None:
        """Open the read pools without waiting: a database down at start-up fills them later."""
        await self.operational_reads.open(wait=False)
        await self.warehouse_reads.open(wait=False)

    async def dispose(self) -> None:
        await self.operational_reads.close()
        await self.warehouse_reads.close()
        self.operational.dispose()
        self.warehouse.dispose()


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engines(request: Request) -> Engines:
    return request.app.state.engines


async def get_event_intake(request: Request) -> EventIntake:
    return request.app.state.event_intake


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EnginesDep = Annotated[Engines, Depends(get_engines)]
EventIntakeDep = Annotated[EventIntake, Depends(get_event_intake)]
