"""Pydantic shapes every domain's API shares: path ids, patterns, and the error body.
Each domain's own shapes are in its ``schemas`` module."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path
from pydantic import BaseModel

from onboard.wire import IDENTIFIER_PATTERN, MAX_BIGINT

ID_PATTERN: Final = IDENTIFIER_PATTERN
ID_MAX_CHARS: Final = 40
"""Passenger, device and trip ids (``pas_…``, ``dev_…``, ``trp_…`` or imported ones): no spaces
or control characters, as long as their ``String(40)`` columns."""


MONTH_PATTERN: Final = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"
"""``YYYY-MM`` from 1970 on, in ASCII digits: a regex digit class would also take other
scripts' digits ("2٠٢٦-11"), which the month arithmetic then refuses."""


PassengerId = Annotated[str, Path(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
TripId = Annotated[str, Path(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
DbId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="a row id (bigint)")]
"""Path parameters of every route, API and pages alike: what their columns hold."""


TEXT_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
"""Free text from people (dispute reasons): line breaks and tabs, but no other control
characters (PostgreSQL cannot store NUL; the rest would hide text from whoever reads it)."""


class ErrorOut(BaseModel):
    """Every refusal: ``detail`` is a message, or a list of ``{loc, msg, type}`` per field."""

    detail: str | list[dict[str, object]]


def errors(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for the refusals a route may give."""
    text = {
        400: "malformed request",
        401: "missing or invalid credentials",
        403: "the operator's role does not allow this",
        404: "not found (or not yours)",
        409: "conflicts with the current state",
        413: "too large",
        422: "invalid input; the detail names the field",
        429: "too many requests",
    }
    # Content spelled out: a route answering HTML or CSV still refuses in JSON.
    content = {"application/json": {"schema": ErrorOut.model_json_schema()}}
    return {code: {"content": content, "description": text[code]} for code in codes}
