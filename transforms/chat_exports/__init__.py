"""WhatsApp "Export chat" files: `formats` (time stamps, date order), `vocabulary` (placeholders
and notices per language), `placeholders` (message types) and `parse` (records to rows)."""

from transforms.chat_exports.parse import (
    AGENT_TIME_ZONE,
    BAD_TIMESTAMP,
    EXPORT_FILE_NAME,
    NO_TIMESTAMP,
    ChatExportResult,
    parse_chat_export,
    safe_contact_name,
)

__all__ = [
    "AGENT_TIME_ZONE",
    "BAD_TIMESTAMP",
    "EXPORT_FILE_NAME",
    "NO_TIMESTAMP",
    "ChatExportResult",
    "parse_chat_export",
    "safe_contact_name",
]
