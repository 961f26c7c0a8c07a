"""The HTTP protocol `passgate serve` runs (web/server.py), through a real uvicorn server and socket: a
response's head and body leave in one write, and keep-alive, streaming, HEAD, 100-continue, large bodies and
closing still behave as uvicorn's own protocol does."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from passgate.web.server import HTTP_PROTOCOL, HttpProtocol

BIG = bytes(range(256)) * 20_000  # 5 MB: more than the socket buffers hold, so writing pauses


@dataclass
class Wire:
    """Every write the protocol hands the real transport (one entry each, so one send at most)."""

    writes: list[bytes] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


WIRE = Wire()


class _Recording:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WIRE.writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = [bytes(c) for c in chunks]
        WIRE.writes.append(b"".join(chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordingProtocol(HttpProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one", b"two", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/late":  # the head must not wait for a body that comes only when the test says so
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        while not WIRE.release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"late"})
        return
    if path == "/big":
        payload = BIG
    elif path == "/echo":
        payload = body
    elif path == "/close":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"3"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"bye"})
        return
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        payload = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=RecordingProtocol, lifespan="off",
                            log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(autouse=True)
def fresh_wire() -> None:
    WIRE.writes.clear()
    WIRE.release.clear()


def _raw(base_url: str, request: bytes, until: bytes, timeout: float = 5) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        got = b""
        while until not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_serve_selects_this_protocol() -> None:
    module, name = HTTP_PROTOCOL.split(":")
    assert getattr(__import__(module, fromlist=[name]), name) is HttpProtocol


def test_a_response_head_and_body_leave_in_one_write(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        for _ in range(3):  # keep-alive: one connection, one write per response
            answer = client.get("/")
            assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert len(WIRE.writes) == 3
    for write in WIRE.writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n") and write.endswith(b'\r\n\r\n{"ok":true}')


def test_pipelined_requests_are_answered_in_order(base_url: str) -> None:
    got = _raw(base_url, b"GET /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nA"
                         b"GET /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nB"
                         b"GET /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nC",
               until=b"\r\n\r\nC")
    bodies = [part.split(b"\r\n\r\n", 1)[1][:1] for part in got.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"A", b"B", b"C"]
    assert got.rstrip().endswith(b"C")


def test_a_streamed_body_is_chunked_and_complete(base_url: str) -> None:
    answer = httpx.get(f"{base_url}/stream")
    assert answer.status_code == 200 and answer.text == "onetwothree"
    assert answer.headers["transfer-encoding"] == "chunked"
    assert WIRE.writes[0].startswith(b"HTTP/1.1 200 OK") and WIRE.writes[0].endswith(b"3\r\none\r\n")
    assert WIRE.writes[-1].endswith(b"0\r\n\r\n")


def test_a_head_sent_before_its_body_is_ready_is_not_held_back(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET /late HTTP/1.1\r\nhost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK") and not head.endswith(b"late")
        WIRE.release.set()
        rest = head.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 4:
            rest += s.recv(65536)
        assert rest == b"late"


def test_head_answers_headers_only(base_url: str) -> None:
    got = _raw(base_url, b"HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", until=b"\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200 OK") and b"content-length: 11" in got and got.endswith(b"\r\n\r\n")


def test_no_content_and_connection_close(base_url: str) -> None:
    assert httpx.get(f"{base_url}/empty").status_code == 204
    got = _raw(base_url, b"GET /close HTTP/1.1\r\nhost: x\r\n\r\n", until=b"\x00")  # read until the server closes
    assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"\r\n\r\nbye")


def test_expect_100_continue(base_url: str) -> None:
    got = _raw(base_url, b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n"
                         b"connection: close\r\n\r\nhello", until=b"\r\n\r\nhello")
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") or got.startswith(b"HTTP/1.1 200 OK")
    assert got.endswith(b"hello")


def test_a_large_body_arrives_whole_to_a_slow_reader(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client, client.stream("GET", "/big") as answer:
        got = b""
        for chunk in answer.iter_bytes(1 << 16):
            got += chunk
            time.sleep(0.001)  # the server's buffers fill: uvicorn pauses and resumes writing
        assert answer.status_code == 200
    assert got == BIG
