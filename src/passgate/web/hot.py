"""The sign-in's hot routes, served ahead of FastAPI's middleware, routing and dependency solving.

Through FastAPI, every request passes five middleware layers, the route table (matched in order), FastAPI's
request handler (dependency solving, a response holder, the return value's validation and serialisation)
and two more exception-handling wrappers: about 100 µs of CPU for a trivial JSON endpoint with a cookie,
against about 30 µs for the same endpoint served here. `PassgateApp` looks an http request's exact method
and path up in a small table first; a hit is served here, everything else (other methods and paths,
trailing slashes, HEAD, OpenAPI) goes to FastAPI as before, where the same endpoints stay registered.

A hot endpoint's failure is answered as FastAPI's stack answers it: the app's exception handler for the
exception's class (PassgateError, HTTPException, ...), or for anything else the app's `Exception` handler (the
500 JSON answer), after which the exception goes on to the server, which logs it, as Starlette's
ServerErrorMiddleware does. What these requests do not pass: middleware added to the app, and FastAPI's
OpenTelemetry instrumentation (which is off unless a provider is configured; Passgate configures none).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
HotRoutes = Mapping[tuple[str, str], Endpoint]  # (method, exact path) -> endpoint

# What FastAPI serialises a `-> Any` endpoint's return value with (its response field is a TypeAdapter of
# Any, dumped to JSON by pydantic-core): the same bytes here.
_ANY = TypeAdapter(Any)


def json_endpoint(endpoint: Callable[[Request, Response, Any], Awaitable[Any]],
                  dependency: Callable[[Request], Awaitable[Any]]) -> Endpoint:
    """An `endpoint(request, response, dep=Depends(dependency)) -> Any` as FastAPI serves it: the dependency's
    value, a response holder for cookies and headers (and a status code, when set), and a return value that
    is either a Response, sent as it is, or content sent as JSON with the holder's headers."""

    async def serve(request: Request) -> Response:
        holder = Response()
        del holder.headers["content-length"]
        holder.status_code = None  # type: ignore[assignment]  # FastAPI's marker: "not set by the endpoint"
        content = await endpoint(request, holder, await dependency(request))
        if isinstance(content, Response):
            return content
        answer = Response(_ANY.dump_json(content, by_alias=True), status_code=holder.status_code or 200,
                          media_type="application/json")
        if not is_body_allowed_for_status_code(answer.status_code):
            answer.body = b""
        answer.headers.raw.extend(holder.headers.raw)
        return answer

    return serve


class PassgateApp(FastAPI):
    """FastAPI, with `hot_routes` served before its middleware stack (see the module's docstring)."""

    hot_routes: dict[tuple[str, str], Endpoint]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hot_routes = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.root_path:
            endpoint = self.hot_routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await self._serve_hot(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve_hot(self, endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is not None:
                response = await _call_handler(handler, request, exc)
            else:
                last_resort = self.exception_handlers.get(Exception) or self.exception_handlers.get(500)
                if last_resort is None:
                    raise
                await (await _call_handler(last_resort, request, exc))(scope, receive, send)
                raise  # to the server, which logs it, as after ServerErrorMiddleware's answer
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        """The handler Starlette's ExceptionMiddleware would pick: an HTTPException's status code's, else the
        nearest class's in the exception's MRO (`Exception` and 500 being ServerErrorMiddleware's)."""
        handlers = self.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code != 500:
            handler = handlers.get(exc.status_code)
            if handler is not None:
                return handler
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            handler = handlers.get(cls)
            if handler is not None:
                return handler
        return None


async def _call_handler(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    if inspect.iscoroutinefunction(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response
