"""Nothing derived from a phone number reaches staging, intermediate, marts or ml.

Meta's message ids (`wamid.…`) and call ids (`wacid.…`) are base64 of protobuf-like records that
embed the counterpart's phone number, so a mart that kept them would hand customers' mobiles to
anyone who decodes a column. This test reads every text value of every table and view past
`raw`, decodes each one every way an id is commonly encoded (base64, URL-safe base64, hex, with
or without a `prefix.`), and looks for the world's phone numbers in the value and in what it
decodes to.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re

import psycopg
from psycopg import sql

from warehouse import urls

LAYERS = ("staging", "intermediate", "marts", "ml")
_PREFIXED = re.compile(r"^[a-z]{2,8}\.(?P<rest>.+)$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]{12,}={0,2}$")


def _decodings(value: str) -> list[bytes]:
    """The value's bytes and everything it decodes to as base64 or hex."""
    out = [value.encode()]
    match = _PREFIXED.match(value)
    body = match.group("rest") if match else value
    if _BASE64.match(body):
        padded = body + "=" * (-len(body) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(binascii.Error, ValueError):
                out.append(decode(padded))
    if len(body) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", body):
        out.append(bytes.fromhex(body))
    return out


def _phone_numbers(operational_url: str) -> set[bytes]:
    """Every phone number of the world as the digits ids embed (country code, no `+`)."""
    with psycopg.connect(urls.libpq_url(operational_url)) as conn:
        rows = conn.execute(
            "SELECT phone FROM users WHERE phone IS NOT NULL"
            " UNION SELECT phone FROM policyholders WHERE phone IS NOT NULL"
            " UNION SELECT whatsapp_business_number FROM agents"
            " WHERE whatsapp_business_number IS NOT NULL"
        ).fetchall()
    return {re.sub(r"\D", "", phone).encode() for (phone,) in rows}


def _text_columns(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = ANY(%s) AND data_type IN ('text', 'character varying')"
        " ORDER BY 1, 2, 3",
        (list(LAYERS),),
    ).fetchall()


def test_the_decoder_finds_a_phone_number_in_a_wamid(built_warehouse) -> None:
    """The probe works: it finds the number inside a raw wamid of the same world."""
    phones = _phone_numbers(built_warehouse.operational_url)
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as conn:
        wamids = [
            w
            for (w,) in conn.execute(
                "SELECT wamid FROM raw.whatsapp_messages WHERE wamid LIKE 'wamid.%' LIMIT 50"
            )
        ]
    assert wamids
    found = [w for w in wamids if any(p in d for d in _decodings(w) for p in phones)]
    # The rest embed a business-scoped user id (`IN.…`) instead of a number.
    assert len(found) > len(wamids) // 2


def test_no_column_past_raw_holds_or_encodes_a_phone_number(built_warehouse) -> None:
    phones = _phone_numbers(built_warehouse.operational_url)
    assert phones
    leaks: list[str] = []
    checked = 0
    with psycopg.connect(urls.libpq_url(built_warehouse.warehouse_url)) as conn:
        columns = _text_columns(conn)
        assert any(schema == "marts" for schema, _, _ in columns)
        for schema, table, column in columns:
            values = conn.execute(
                sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} IS NOT NULL").format(
                    sql.Identifier(column), sql.Identifier(schema, table), sql.Identifier(column)
                )
            ).fetchall()
            for (value,) in values:
                checked += 1
                if any(p in d for d in _decodings(str(value)) for p in phones):
                    leaks.append(f"{schema}.{table}.{column}")
                    break
    assert checked > 1000
    assert leaks == []
