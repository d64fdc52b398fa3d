"""Keyed pseudonyms for personal data (DESIGN §5, DPDP Act): the one definition every source uses.

Why keyed (HMAC-SHA256 with `MITRA_PII_KEY`) and not a plain hash: there are only about 10^10
Indian mobile numbers, so an unkeyed SHA-256 of a number is reversed by enumerating them all in
minutes. With a secret key the token is still stable (the same number joins across sources and
days) but cannot be recomputed without the key.

Why normalise to E.164 first: the same phone reaches us as `919812345678` (WhatsApp `wa_id`),
`+91 98123 45678` (a chat export's unsaved contact), `+919812345678` (the operational database)
or `09812345678` (typed by hand); they must all give one token, or joins silently miss.
"""

from __future__ import annotations

import hmac
import re

import polars as pl

_NOT_DIGIT = re.compile(r"\D")
# Spaces (also no-break), dashes (also U+2011 no-break hyphen), dots, brackets and the bidi
# marks iOS wraps numbers in (U+202A..U+202E embeddings, U+2066..U+2069 isolates, LRM/RLM).
_FORMATTING = re.compile(
    r"[\s().\-\u00a0\u2007\u202f\u2010\u2011\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
INDIA_CODE = "91"
# E.164 numbers have at most 15 digits; the shortest national numbers in use have 8 with the
# country code (small island states), so anything shorter is not a phone number.
MIN_DIGITS, MAX_DIGITS = 8, 15


def normalise_e164(phone: str) -> str | None:
    """`phone` as `+<country code><number>`, or None when it cannot be a phone number.

    Rules, in order: formatting (spaces, dashes, dots, brackets, bidi marks) is ignored; a leading
    `+` or `00` introduces the country code; a bare 10-digit number starting 6-9 is an Indian
    mobile and an 11-digit one starting `0` is an Indian number with its trunk prefix (the
    platform serves India); any other bare digits already carry their country code, as WhatsApp's
    `wa_id` does.
    """
    text = _FORMATTING.sub("", phone)
    if not text or _NOT_DIGIT.search(text.removeprefix("+")):
        return None
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif len(text) == 10 and text[0] in "6789":
        digits = INDIA_CODE + text
    elif len(text) == 11 and text[0] == "0":
        digits = INDIA_CODE + text[1:]
    else:
        digits = text
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS or digits[0] == "0":
        return None
    return "+" + digits


def keyed_token(value: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of `value` under `key`: a stable pseudonym that needs the key to recompute.

    An empty key is refused: it would silently turn every token into a reversible plain hash.
    """
    if not key:
        raise ValueError("the PII key is empty: tokens would be reversible by enumeration")
    return hmac.digest(key, value.encode("utf-8"), "sha256").hex()


def phone_token(phone: str, key: bytes) -> str:
    """The token of a phone number: hex HMAC-SHA256(key, E.164 number).

    Raises ValueError for text that is not a phone number, so a wrong column fails loudly instead
    of producing tokens that join nothing.
    """
    e164 = normalise_e164(phone)
    if e164 is None:
        raise ValueError("not a phone number")  # the value itself is PII: not in the message
    return keyed_token(e164, key)


def _token_or_none(phone: str | None, key: bytes) -> str | None:
    if phone is None:
        return None
    e164 = normalise_e164(phone)
    return None if e164 is None else keyed_token(e164, key)


def phone_tokens(phones: pl.Series, key: bytes) -> pl.Series:
    """`phone_token` of each value; null for nulls and for values that are not phone numbers.

    HMAC runs once per distinct number (a day's webhooks repeat the same few thousand customers),
    then the tokens are mapped back in polars.
    """
    distinct = phones.drop_nulls().unique()
    tokens = pl.Series([_token_or_none(p, key) for p in distinct.to_list()], dtype=pl.String)
    return phones.replace_strict(distinct, tokens, default=None, return_dtype=pl.String)


def phone_token_expr(col: str, key: bytes) -> pl.Expr:
    """A polars expression replacing the phone numbers of `col` by their tokens (see
    `phone_tokens`); the result keeps the column's name."""
    return pl.col(col).map_batches(
        lambda phones: phone_tokens(phones.cast(pl.String), key), return_dtype=pl.String
    )
