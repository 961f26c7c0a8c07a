"""create_app(): assembles routers, error handling and shared services."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .config import Settings
from .core import errors
from .core.errors import ErrorCode, PassgateError
from .graph.base import error_response
from .oidc import routes as oidc_routes
from .oidc.keys import KeyCache
from .store.db import Database
from .web import api as web_api
from .web.deps import Services, context_of
from .web.hot import PassgateApp

log = logging.getLogger("passgate")

INTERNAL = ErrorCode(
    999999, "InternalServerError", 500,
    "Passgate hit an unexpected problem and changed nothing.",
    "Try again; if it persists, give the request-id to your administrator.",
)

JSON_PREFIXES = ("/v1.0", "/beta", "/api", "/oauth2")


def _wants_page(request: Request) -> bool:
    return not request.url.path.startswith(JSON_PREFIXES) and "text/html" in request.headers.get("accept", "")


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    db = db or Database(settings.database_url)
    db.durable_ceremonies = settings.durable_sign_ins
    oidc_routes.provider_metadata(settings)  # discovery is validated at start (Authlib's rules)
    # The sign-in's routes (OIDC, sign-in API) are the app's own, not an included router's: FastAPI matches an
    # included router's routes twice a request (to pick the router, then within it), and every route of the
    # routers before it once more, about 30 µs a request. Same routes, same order as include_router gave.
    app = PassgateApp(title="Passgate", version="0.1.0", docs_url="/docs", redoc_url=None,
                      routes=[*oidc_routes.router.routes, *web_api.router.routes])
    # The four requests of a sign-in skip FastAPI's stack (web/hot.py); their routes above still serve the rest.
    app.hot_routes.update({**oidc_routes.HOT_ROUTES, **web_api.HOT_ROUTES})
    app.state.services = Services(settings=settings, db=db, keys=KeyCache(db))

    def render(request: Request, code: ErrorCode, message: str, status: int | None = None) -> Response:
        ctx = context_of(request)
        if _wants_page(request):
            from .web.pages import error_page

            return error_page(request, code, message, ctx.correlation_id, status)
        return error_response(code, message, ctx.correlation_id, status)

    @app.exception_handler(PassgateError)
    async def _passgate_error(request: Request, exc: PassgateError) -> Response:
        return render(request, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return render(request, errors.INVALID_REQUEST, f"{where}: {first.get('msg', 'invalid')}".strip(": "))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return render(request, errors.NOT_FOUND, f"Nothing is served at {request.url.path}.")
        if exc.status_code == 405:
            return render(request, errors.INVALID_REQUEST, f"{request.method} is not allowed here.", 405)
        return render(request, errors.INVALID_REQUEST, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return render(request, INTERNAL, INTERNAL.message)

    from .graph import routes as graph_routes
    from .web import pages

    for prefix in ("/v1.0", "/beta"):
        app.include_router(graph_routes.router, prefix=prefix)
    app.include_router(pages.router)
    return app
