"""What every Graph route shares: the error body, token checking, permissions, the request context."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from .. import json_codec
from ..context import Actor, RequestContext
from ..core import errors
from ..core.errors import ErrorCode, PassgateError
from ..oidc.tokens import verify_access_token
from ..web.deps import request_context, services


def error_response(code: ErrorCode, message: str, ctx_id: str, status: int | None = None) -> JSONResponse:
    """Graph's error body: {"error": {"code", "message", "innerError": {"request-id", "date"}}}."""
    return JSONResponse(
        {
            "error": {
                "code": code.name,
                "message": message,
                "innerError": {
                    "request-id": ctx_id,
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "passgateCode": code.number,
                },
            }
        },
        status_code=status or code.status,
        headers={"request-id": ctx_id, **({"WWW-Authenticate": "Bearer"} if code.status == 401 else {})},
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PassgateError(errors.INVALID_TOKEN, "No bearer token was sent.")
    return token.strip()


def require(*any_of: str) -> Callable[..., RequestContext]:
    """A dependency: a valid app token holding at least one of these Graph permissions."""

    def check(request: Request, ctx: RequestContext = Depends(request_context)) -> RequestContext:
        svc = services(request)
        claims = verify_access_token(svc.keys.ring(ctx), svc.settings, _bearer(request), ctx.now)
        roles = claims.get("roles") or []
        if not any(p in roles for p in any_of):
            raise PassgateError(
                errors.INSUFFICIENT_PERMISSIONS, f"This operation needs one of: {', '.join(any_of)}."
            )
        actor = Actor(kind="app", id=str(claims.get("appid")), display_name=claims.get("app_displayname"))
        return RequestContext(
            now=ctx.now, ip_address=ctx.ip_address, user_agent=ctx.user_agent,
            correlation_id=ctx.correlation_id, actor=actor,
        )

    return check


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a stable 400 error."""
    raw = await request.body()
    try:
        value = json_codec.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise PassgateError(errors.MALFORMED_JSON) from None
    except RecursionError:
        raise PassgateError(errors.MALFORMED_JSON, "The body is nested too deeply.") from None
    if not isinstance(value, dict):
        raise PassgateError(errors.MALFORMED_JSON, "The body must be a JSON object.")
    return value


F = TypeVar("F", bound=Callable[..., Any])


def under(router: APIRouter, roots: Sequence[str], method: str, suffix: str) -> Callable[[F], F]:
    """Register one handler under each of a resource's roots (Graph serves some resources at two paths)."""

    def wrap(handler: F) -> F:
        for root in roots:
            getattr(router, method)(root + suffix)(handler)
        return handler

    return wrap


def odata_context(request: Request, fragment: str) -> str:
    version = request.url.path.split("/")[1]
    return f"{request.base_url}{version}/$metadata#{fragment}"


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- shared by the resource modules ----------------------------------------------------------------
def bad_request(message: str) -> PassgateError:
    return PassgateError(errors.INVALID_REQUEST, message)


@contextmanager
def transaction(request: Request, write: bool | None = None) -> Iterator[Session]:
    """The request's one transaction (a writing one unless it is a GET, or as `write` says).
    A uniqueness race lost to a concurrent request is a 409, not a 500."""
    try:
        with services(request).db.transaction(write=request.method != "GET" if write is None else write) as session:
            yield session
    except IntegrityError:
        raise PassgateError(
            errors.CONFLICT, "A concurrent request changed the same object; read it again and retry."
        ) from None


class GraphJSONResponse(JSONResponse):
    """Starlette's JSONResponse (compact, UTF-8), encoded by pydantic-core: a 1,000-entry log page is 1.9 MB."""

    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content)


def graph_json(ctx: RequestContext, body: dict[str, Any], status: int = 200) -> JSONResponse:
    return GraphJSONResponse(body, status_code=status, headers={"request-id": ctx.correlation_id})


def no_content(ctx: RequestContext) -> Response:
    return Response(status_code=204, headers={"request-id": ctx.correlation_id})


# A property's accepted JSON types; `None` in the tuple means null is accepted.
Kind = tuple[type | None, ...]
STRING: Kind = (str,)
NULLABLE_STRING: Kind = (str, None)
BOOLEAN: Kind = (bool,)
NULLABLE_BOOLEAN: Kind = (bool, None)
NULLABLE_INTEGER: Kind = (int, None)
NULLABLE_OBJECT: Kind = (dict, None)
STRING_LIST: Kind = (list,)

_KIND_NAMES = {str: "a string", bool: "true or false", int: "a whole number", dict: "an object", list: "an array"}


def usable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \\ud800 escape
        return False
    return True


def _fits(value: Any, kind: Kind) -> bool:
    if value is None:
        return None in kind
    if isinstance(value, bool):
        return bool in kind
    if isinstance(value, list):
        return list in kind and all(isinstance(v, str) for v in value)
    return any(t is not None and t is not bool and isinstance(value, t) for t in kind)


def _has_unusable_text(value: Any) -> bool:
    if isinstance(value, str):
        return not usable_text(value)
    if isinstance(value, list):
        return any(_has_unusable_text(v) for v in value)
    return False


def shown(text: str, limit: int = 100) -> str:
    """User input made safe to echo in a message: bounded, and encodable whatever it holds."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def check_properties(body: dict[str, Any], schema: Mapping[str, Kind], odata_type: str) -> dict[str, Any]:
    """The body's properties, checked against `schema` (Graph name -> accepted JSON types).

    An unknown property, a wrong type or unusable text (NUL, lone surrogates: no database stores them)
    is refused with a message naming the property; "@odata.type" is accepted when it names
    `odata_type`, and is not returned.
    """
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@odata.type":
            if value != f"#{odata_type}":
                raise bad_request(f"Property '@odata.type' must be '#{odata_type}' here.")
            continue
        kind = schema.get(key)
        if kind is None:
            raise bad_request(
                f"Property '{shown(key)}' does not exist on {odata_type}; the properties accepted here are: "
                f"{', '.join(schema)}."
            )
        if not _fits(value, kind):
            wanted = " or ".join(_KIND_NAMES[t] if t is not None else "null" for t in kind)
            if list in kind:
                wanted += " of strings"
            raise bad_request(f"Property '{key}' must be {wanted}.")
        if _has_unusable_text(value):
            raise bad_request(f"Property '{key}' contains a NUL character or a lone surrogate, which cannot be stored.")
        out[key] = value
    return out
