"""Request dependencies: settings and database engines, overridable in tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from warehouse.settings import Settings


@dataclass(frozen=True)
class Engines:
    """One engine per database the API reads (the operational store and the warehouse)."""

    operational: Engine
    warehouse: Engine

    def as_dict(self) -> dict[str, Engine]:
        return {"operational": self.operational, "warehouse": self.warehouse}

    def dispose(self) -> None:
        self.operational.dispose()
        self.warehouse.dispose()


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engines(request: Request) -> Engines:
    return request.app.state.engines


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EnginesDep = Annotated[Engines, Depends(get_engines)]
