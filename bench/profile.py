"""Where a worker's CPU goes under load: py-spy samples (collapsed stacks), grouped into the costs that
matter for a sign-in (HTTP server, framework, database driver and ORM, WebAuthn check, token signing...).

`python -m bench.profile STACKS.txt` summarises a file written by `python -m bench --profile STACKS.txt`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Samples are taken only from the thread holding the GIL (py-spy --gil), so waiting on PostgreSQL or on
# the socket is not counted: what remains approximates CPU spent in Python.
# First match wins, checked on each frame from the leaf up: a sample is charged to the innermost
# frame that belongs to a named cost, so "SQLAlchemy" means time inside SQLAlchemy itself.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("ES256/RSA crypto (cryptography)", ("cryptography/",)),
    ("py_webauthn / cbor2", ("webauthn/", "cbor2/")),
    ("joserfc / authlib (JWT, OAuth)", ("joserfc/", "authlib/")),
    ("psycopg (driver, wire)", ("psycopg/", "psycopg_binary/")),
    ("SQLAlchemy (ORM, core, pool)", ("sqlalchemy/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("jinja2 templating", ("jinja2/",)),
    ("uvicorn / h11 / httptools (HTTP)", ("uvicorn/", "h11/", "httptools/")),
    ("starlette / fastapi (routing, requests, responses)", ("starlette/", "fastapi/", "anyio/")),
    ("python-multipart (forms)", ("multipart/", "python_multipart/")),
    # The one-write protocol (web/server.py) hands the response to uvloop, whose send() runs in C under its frame:
    # time there is the socket write itself.
    ("socket writes (send, under web/server.py)", ("HeadWithBodyTransport.write",)),
    ("passgate own code", ("passgate/",)),
    ("asyncio event loop / selectors", ("asyncio/", "selectors.py", "uvloop/")),
]


def record(pid: int, seconds: float, out: Path, rate: int = 200) -> subprocess.Popen[bytes] | None:
    """Start py-spy on a server (its workers included) for `seconds`; None when py-spy is not installed."""
    exe = Path(sys.executable).with_name("py-spy")
    command = str(exe) if exe.exists() else shutil.which("py-spy")
    if command is None:
        return None
    return subprocess.Popen(
        [command, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)), "--rate",
         str(rate), "--format", "raw", "--output", str(out), "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def categorise(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for name, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return name
    return "other (stdlib, interpreter)"


def summarise(path: Path, top: int = 25) -> str:
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    by_passgate: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        # Idle workers wait in the selector; that is not a cost of serving.
        if "select (selectors.py" in stack.rsplit(";", 1)[-1] or "epoll" in stack.rsplit(";", 1)[-1]:
            continue
        total += n
        by_category[categorise(stack)] += n
        by_leaf[stack.rsplit(";", 1)[-1]] += n
        for frame in {f for f in stack.split(";") if "passgate/" in f}:
            by_passgate[frame] += n
    if total == 0:
        return "no busy samples"
    lines = [f"{total} busy samples", "", "cost (innermost named frame)                      share"]
    lines += [f"  {name:<48} {100 * n / total:5.1f} %" for name, n in by_category.most_common()]
    lines += ["", "Passgate functions, inclusive (share of busy samples with the function on the stack)"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in by_passgate.most_common(top)]
    lines += ["", "hottest leaf frames (self time)"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in by_leaf.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
