"""OAuth/OIDC endpoints: token (client credentials for now) and the published keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..context import RequestContext
from ..web.deps import request_context, services
from . import server

router = APIRouter()


@router.post("/oauth2/token")
async def token(request: Request, ctx: RequestContext = Depends(request_context)) -> Response:
    svc = services(request)
    parsed = await server.parse(request)
    return await run_in_threadpool(server.token_response, svc.db, ctx, svc.settings, svc.keys, parsed)


@router.get("/.well-known/jwks.json")
@router.get("/oauth2/jwks")
def jwks(request: Request, ctx: RequestContext = Depends(request_context)) -> dict[str, Any]:
    return services(request).keys.ring(ctx).public_jwks()
