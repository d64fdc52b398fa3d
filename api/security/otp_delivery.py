"""Delivering one-time passwords: an interface, and the development implementation.

The API never returns a code in a response. In development and tests the code is logged (and
kept by `RecordingOtpSender` for tests); production must be given a real sender (an SMS gateway),
and the app refuses to start without one rather than silently logging codes.
"""

from __future__ import annotations

import logging
from typing import Protocol

_log = logging.getLogger("api.otp")


class OtpSender(Protocol):
    def send(self, phone: str, code: str) -> None:
        """Deliver `code` to `phone`; raise on failure (the challenge is then not kept)."""


class LoggingOtpSender:
    """Development: writes the code to the API's log."""

    def send(self, phone: str, code: str) -> None:
        _log.warning("development OTP for %s: %s (never logged in production)", phone, code)


class RecordingOtpSender(LoggingOtpSender):
    """Tests: remembers the last code sent to each phone."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    def send(self, phone: str, code: str) -> None:
        self.sent[phone] = code
