"""/users/{id|upn}/authentication/temporaryAccessPassMethods: issue, read and delete a user's pass.

The pass itself (`temporaryAccessPass`) is in the 201 answer to POST and nowhere else: it is stored
only as an argon2id hash, so every later read returns null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from .. import directory
from ..context import RequestContext
from ..core import errors
from ..core.errors import PassgateError
from ..core.values import UsabilityReason
from ..signin import taps
from ..store.tables import TemporaryAccessPass, User
from . import odata
from .base import (
    NULLABLE_BOOLEAN,
    NULLABLE_INTEGER,
    NULLABLE_STRING,
    bad_request,
    check_properties,
    graph_json,
    iso,
    json_body,
    no_content,
    odata_context,
    require,
    transaction,
)

router = APIRouter(prefix="/users/{user_ref}/authentication")

READ = require("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
WRITE = require("UserAuthenticationMethod.ReadWrite.All")
TAP_TYPE = "microsoft.graph.temporaryAccessPassAuthenticationMethod"
_CREATE = {"startDateTime": NULLABLE_STRING, "lifetimeInMinutes": NULLABLE_INTEGER, "isUsableOnce": NULLABLE_BOOLEAN}
_EARLIEST_YEAR, _LATEST_YEAR = 1970, 9998  # a pass's end (start + at most 30 days) must stay representable


def parse_start(value: str) -> datetime:
    """An ISO 8601 date and time; without an offset it is taken as UTC, as Graph does."""
    try:
        start = datetime.fromisoformat(value.strip())
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_request(
            "Property 'startDateTime' must be an ISO 8601 date and time such as 2026-06-05T08:00:00Z."
        ) from None
    if not _EARLIEST_YEAR <= start.year <= _LATEST_YEAR:
        raise bad_request(f"Property 'startDateTime' must fall between the years {_EARLIEST_YEAR} and {_LATEST_YEAR}.")
    return start


def tap_json(row: TemporaryAccessPass, reason: UsabilityReason, secret: str | None = None) -> dict[str, Any]:
    return {
        "@odata.type": f"#{TAP_TYPE}",
        "id": row.id,
        "temporaryAccessPass": secret,
        "createdDateTime": iso(row.created_at),
        "startDateTime": iso(row.start_at),
        "lifetimeInMinutes": row.lifetime_minutes,
        "isUsableOnce": row.is_usable_once,
        "isUsable": reason is UsabilityReason.ENABLED_BY_POLICY,
        "methodUsabilityReason": reason.value,
    }


def _context(request: Request, user: User, entity: bool = False) -> str:
    tail = "/$entity" if entity else ""
    return odata_context(request, f"users('{user.id}')/authentication/temporaryAccessPassMethods{tail}")


def _the_pass(row: TemporaryAccessPass | None, method_id: str) -> TemporaryAccessPass:
    if row is None or row.id != method_id.lower():
        raise PassgateError(
            errors.NOT_FOUND, f"The user has no Temporary Access Pass with the id {method_id[:64]!r}."
        )
    return row


@router.post("/temporaryAccessPassMethods")
def issue(
    user_ref: str, request: Request, ctx: RequestContext = Depends(WRITE), body: dict[str, Any] = Depends(json_body)
) -> Response:
    values = check_properties(body, _CREATE, TAP_TYPE)
    start = parse_start(values["startDateTime"]) if values.get("startDateTime") is not None else None
    with transaction(request) as session:
        user = directory.get_user(session, user_ref)
        issued = taps.issue(
            session, ctx, user, start, values.get("lifetimeInMinutes"), values.get("isUsableOnce")
        )
        reason = taps.usability(session, issued.row, ctx.now)
        created = {
            "@odata.context": _context(request, user, entity=True),
            **tap_json(issued.row, reason, issued.secret),
        }
    return graph_json(ctx, created, 201)


@router.get("/temporaryAccessPassMethods")
def list_passes(user_ref: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        user = directory.get_user(session, user_ref)
        row = taps.pass_of(session, user)
        value = [] if row is None else [tap_json(row, taps.usability(session, row, ctx.now))]
        listing = {"@odata.context": _context(request, user), "value": value}
    return graph_json(ctx, listing)


@router.get("/temporaryAccessPassMethods/{method_id}")
def read_pass(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(READ)) -> Response:
    odata.parse(request, paged=False)
    with transaction(request) as session:
        user = directory.get_user(session, user_ref)
        row = _the_pass(taps.pass_of(session, user), method_id)
        reason = taps.usability(session, row, ctx.now)
        found = {"@odata.context": _context(request, user, entity=True), **tap_json(row, reason)}
    return graph_json(ctx, found)


@router.delete("/temporaryAccessPassMethods/{method_id}")
def delete_pass(user_ref: str, method_id: str, request: Request, ctx: RequestContext = Depends(WRITE)) -> Response:
    with transaction(request) as session:
        user = directory.get_user(session, user_ref)
        taps.delete(session, ctx, user, _the_pass(taps.pass_of(session, user), method_id))
    return no_content(ctx)
