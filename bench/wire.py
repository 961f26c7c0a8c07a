"""A small HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

httpx spent most of the generator's CPU in its connection pool (httpcore) and the h11 parser: about half
as much CPU per sign-in as the server itself, on the same 2 cores, and at 32 virtual users the generator
was the bottleneck. This client does only what the benchmark needs against 127.0.0.1: keep-alive
connections, Content-Length and chunked bodies, JSON and form bodies, cookies left to the caller.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

IDLE_EXPIRY = 2.0  # seconds; below uvicorn's 5 s keep-alive timeout, so the server never closes one first


class WireError(Exception):
    """The connection failed or the server's answer could not be read."""


class Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def get(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.items if k == name), default)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get_list(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.items if k == name]


class Response:
    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter, float]


class Client:
    """Connections are kept in a LIFO pool; a request takes one (or opens one) and gives it back."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = f"{self.host}:{self.port}"
        self.timeout = timeout
        self.idle: list[Connection] = []

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        while self.idle:
            _, writer, _ = self.idle.pop()
            writer.close()

    async def get(self, path: str, *, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> Response:
        if params:
            path = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        return await self.request("GET", path, headers or {}, None, None)

    async def post(self, path: str, *, json: Any = None, data: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
        if data is not None:
            return await self.request("POST", path, headers or {}, urlencode(data).encode(),
                                      "application/x-www-form-urlencoded")
        body = b"" if json is None else _dumps(json)
        return await self.request("POST", path, headers or {}, body, "application/json")

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None,
                      content_type: str | None) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.authority}", "user-agent: passgate-bench"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += [f"content-type: {content_type}", f"content-length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = head + (body or b"")
        reused = self._take()
        try:
            return await asyncio.wait_for(self._exchange(reused or await self._open(), payload), self.timeout)
        except _Stale:
            # A kept connection the server had closed: nothing was processed, so sending again is safe.
            return await asyncio.wait_for(self._exchange(await self._open(), payload), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            raise WireError(f"{method} {path.split('?')[0]}: {type(exc).__name__} {exc}") from exc

    def _take(self) -> Connection | None:
        now = time.monotonic()
        while self.idle:
            reader, writer, used = self.idle.pop()
            if now - used < IDLE_EXPIRY and not reader.at_eof():
                return reader, writer, used
            writer.close()
        return None

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, 0.0

    async def _exchange(self, conn: Connection, payload: bytes) -> Response:
        reader, writer, used = conn
        reused = used > 0
        try:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            writer.close()
            if reused and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial):
                raise _Stale from exc
            raise
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        items = []
        for line in header_lines:
            name, _, value = line.partition(":")
            items.append((name.strip().lower(), value.strip()))
        headers = Headers(items)
        length = headers.get("content-length")
        if length is not None:
            content = await reader.readexactly(int(length))
        elif (headers.get("transfer-encoding") or "").lower() == "chunked":
            content = await _chunked(reader)
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:
            content = await reader.read()
            headers.items.append(("connection", "close"))
        if (headers.get("connection") or "").lower() == "close":
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return Response(status, headers, content)


class _Stale(Exception):
    pass


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
