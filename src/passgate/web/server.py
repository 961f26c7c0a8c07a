"""The HTTP protocol `passgate serve` runs: uvicorn's httptools protocol, with a response's head and body
sent in one write.

uvicorn writes a response's status line and headers, then its body, each with its own `transport.write`;
uvloop sends each at once (its fast path when nothing is queued), so every response cost two send() calls
on the socket, and the client's side two wake-ups. Here the head waits for the next write made in the same
event-loop turn and goes out with it in one send (joined to a small body, beside a large one in one writev);
if no write follows (HEAD, 204, a streamed body not ready yet), the head goes out at the end of the turn.
Nothing else changes: bytes, their order, flow control and closing are uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_PREFIX = b"HTTP/"  # every status line uvicorn writes (responses, 100 Continue, its own errors)
JOIN_MAX_BYTES = 16 * 1024  # a body up to this size is copied after its head; a larger one is sent beside it


class HeadWithBodyTransport:
    """Stands in for a connection's transport in front of uvicorn's protocol: holds a response's head until
    the next write or the end of the event-loop turn, whichever is first. Anything not written through it
    (reading, flow control, extra info) goes to the real transport."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= JOIN_MAX_BYTES:
                self._transport.write(held + data)  # one buffer: uvloop's plain write() fast path
            else:
                self._transport.writelines((held, data))  # one writev, without copying a large body
        elif isinstance(data, bytes) and data.startswith(HEAD_PREFIX):
            self._held = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():  # the peer went away: nothing to send it
                self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        self._flush()
        self._transport.writelines(chunks)

    def close(self) -> None:
        self._flush()  # a response's last bytes are never held back from a closing connection
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + (len(self._held) if self._held is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through `HeadWithBodyTransport`. Flow control keeps the real
    transport (it only pauses and resumes reading)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = HeadWithBodyTransport(transport, self.loop)  # type: ignore[assignment]


HTTP_PROTOCOL = f"{HttpProtocol.__module__}:{HttpProtocol.__qualname__}"
