"""What every Graph route shares: the error body, token checking, permissions, the request context."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

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
        value = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise PassgateError(errors.MALFORMED_JSON) from None
    if not isinstance(value, dict):
        raise PassgateError(errors.MALFORMED_JSON, "The body must be a JSON object.")
    return value


def odata_context(request: Request, fragment: str) -> str:
    version = request.url.path.split("/")[1]
    return f"{request.base_url}{version}/$metadata#{fragment}"


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
