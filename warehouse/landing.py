"""The landing zone's layout: one definition for its writers (the API, the simulator) and its
reader (the ingestion assets).

`<landing>/<source>/dt=YYYY-MM-DD/<file>`, the day being the calendar day in Asia/Kolkata on which
the platform received the data (DESIGN §2): a daily partition is one such folder.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

RECEIPT_TIMEZONE = "Asia/Kolkata"
IST = ZoneInfo(RECEIPT_TIMEZONE)

APP_EVENTS = "app_events"
WHATSAPP = "whatsapp"
WHATSAPP_EXPORTS = "whatsapp_exports"


def receipt_day(moment: datetime) -> date:
    """The partition a moment of receipt belongs to: its calendar day in Asia/Kolkata."""
    return moment.astimezone(IST).date()


def day_folder(root: Path, source: str, day: date) -> Path:
    """`<root>/<source>/dt=YYYY-MM-DD`: one folder per receipt day."""
    return root / source / f"dt={day.isoformat()}"
