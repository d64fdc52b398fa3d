"""Indian formats the API validates, one definition each (shared by every request schema).

The database checks the generic shapes too (E.164, PAN); these are the stricter rules for what
the app may send: Indian mobile numbers only, IRDAI licence numbers as the regulator prints them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

INDIAN_MOBILE = r"^\+91[6-9][0-9]{9}$"
PAN = r"^[A-Z]{5}[0-9]{4}[A-Z]$"
IRDAI_LICENCE = r"^IRDAI/[A-Z0-9][A-Z0-9-]{3,30}$"
PINCODE = r"^[1-9][0-9]{5}$"
LANGUAGE = r"^[a-z]{2,3}(_[A-Z]{2})?$"

IndianMobile = Annotated[
    str,
    Field(
        pattern=INDIAN_MOBILE,
        description="Indian mobile number in E.164: +91 and 10 digits starting 6-9",
        examples=["+919812345678"],
    ),
]
Pan = Annotated[
    str,
    Field(pattern=PAN, description="Permanent Account Number", examples=["ABCDE1234F"]),
]
IrdaiLicence = Annotated[
    str,
    Field(
        pattern=IRDAI_LICENCE,
        description="IRDAI agent licence number",
        examples=["IRDAI/LIC-000123"],
    ),
]
Pincode = Annotated[str, Field(pattern=PINCODE, examples=["560001"])]
Language = Annotated[str, Field(pattern=LANGUAGE, examples=["hi"], max_length=8)]
