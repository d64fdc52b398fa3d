"""Phone numbers as phones and exports write them normalise to one E.164 number, so one token."""

from __future__ import annotations

import pytest

from transforms.pii import normalise_e164, phone_token

PII_KEY = b"test-pii-key"


@pytest.mark.parametrize(
    "written",
    [
        "+91 98765 43210",  # Android export
        "\u202a+91 98765 43210\u202c",  # iOS wraps numbers in a left-to-right embedding
        "\u2068+91 98765 43210\u2069",  # ... or in an isolate
        "+91\u00a098765\u00a043210",  # no-break spaces
        "+91\u202f98765\u202f43210",  # narrow no-break spaces
        "+91 98765\u201143210",  # a non-breaking hyphen
        "\u200e+91 (98765) 43210",
        "919876543210",  # WhatsApp wa_id
        "09876543210",  # typed with the trunk prefix
        "9876543210",
        "0091 98765 43210",
    ],
)
def test_every_way_of_writing_a_number_gives_one_e164(written: str) -> None:
    assert normalise_e164(written) == "+919876543210"
    assert phone_token(written, PII_KEY) == phone_token("+919876543210", PII_KEY)


@pytest.mark.parametrize(
    ("written", "e164"),
    [("\u202a+1 (415) 555\u20110123\u202c", "+14155550123"), ("+44 20 7946 0958", "+442079460958")],
)
def test_foreign_numbers_keep_their_country_code(written: str, e164: str) -> None:
    assert normalise_e164(written) == e164


@pytest.mark.parametrize(
    "text", ["Ravi Kumar", "Ravi 98765", "+91 98", "", "\u202a\u202c", "12:30"]
)
def test_names_and_fragments_are_not_numbers(text: str) -> None:
    assert normalise_e164(text) is None
