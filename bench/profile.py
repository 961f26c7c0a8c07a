"""Where a worker's CPU goes under load: py-spy samples (collapsed stacks), grouped into the costs that
matter for a sign-in (HTTP server, framework, database driver and ORM, WebAuthn check, token signing...);
beside them, where `perf` works, the same step sampled on CPU time by binary (the interpreter, the kernel,
the cryptography, the driver's C...).

py-spy samples on the wall clock whichever thread holds the GIL, so a worker taken off its core while it
holds the GIL is counted as busy where it was stopped. On a machine whose cores are shared with PostgreSQL
and the load generator that happens most in send(): the write that wakes the client lets the scheduler run
it. The send() line's share of py-spy's samples (8-13 %) is therefore no measure of its CPU (measured in a
worker with thread_time(): about 17 µs a write on the eighth session's machine, under 1 % of a sign-in);
perf's samples, taken on CPU time only, are.

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
    # time there is the socket write, and the time the worker waited for its core after it (see above).
    ("socket writes (send, and waiting for the core after it)", ("HeadWithBodyTransport.write",)),
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
    lines = [f"{total} busy samples", "", f"{'cost (innermost named frame)':<58} share"]
    lines += [f"  {name:<56} {100 * n / total:5.1f} %" for name, n in by_category.most_common()]
    lines += ["", "Passgate functions, inclusive (share of busy samples with the function on the stack)"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in by_passgate.most_common(top)]
    lines += ["", "hottest leaf frames (self time)"]
    lines += [f"  {100 * n / total:5.1f} %  {frame}" for frame, n in by_leaf.most_common(top)]
    return "\n".join(lines)


# perf's shared objects, grouped; first match wins, on the object's name.
NATIVE: list[tuple[str, tuple[str, ...]]] = [
    ("Python interpreter (bytecode, objects, dicts, calls)", ("libpython", "python3")),
    ("kernel (system calls: sockets, epoll, scheduling)", ("[kernel",)),
    ("cryptography (ES256 signing and verification, hashes)", ("_rust", "libcrypto", "libssl", "_hashlib")),
    ("libpq and psycopg's C", ("libpq", "psycopg", "pq.cpython")),
    ("event loop and HTTP parser (uvloop, httptools)", ("loop.cpython", "parser.cpython", "url_parser")),
    ("C library (malloc, memcpy)", ("libc.so", "libm.so", "ld-linux")),
]


def perf_command() -> str | None:
    """`perf`, when it is installed and may sample on this machine (kernel.perf_event_paranoid allows it)."""
    command = shutil.which("perf")
    if command is None:
        return None
    check = subprocess.run([command, "stat", "-e", "cpu-clock", "true"], capture_output=True, check=False)
    return command if check.returncode == 0 else None


def record_native(pids: list[int], seconds: float, out: Path, rate: int = 499) -> subprocess.Popen[bytes] | None:
    """Start perf on the workers, sampling on CPU time (cpu-clock: a core's time only while they run on it);
    None when perf cannot."""
    command = perf_command()
    if command is None or not pids:
        return None
    return subprocess.Popen(
        [command, "record", "-e", "cpu-clock", "-F", str(rate), "-p", ",".join(map(str, pids)), "-o", str(out),
         "--", "sleep", str(int(seconds))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def native_shares(report: str) -> dict[str, float]:
    """`perf report --sort dso --stdio` as shares (percent) of NATIVE's groups, the rest as 'other native'."""
    shares: dict[str, float] = {}
    for line in report.splitlines():
        share, _, dso = line.strip().partition("%")
        dso = dso.strip()
        try:
            value = float(share)
        except ValueError:
            continue  # a comment or a blank line
        group = next((name for name, needles in NATIVE if any(n in dso for n in needles)), "other native")
        shares[group] = shares.get(group, 0.0) + value
    return shares


def summarise_native(path: Path) -> str:
    command = perf_command()
    if command is None:
        return "perf is not usable here: no CPU-time split"
    report = subprocess.run([command, "report", "-i", str(path), "--sort", "dso", "--stdio"],
                            capture_output=True, text=True, check=False).stdout
    shares = native_shares(report)
    if not shares:
        return "perf took no samples"
    lines = [f"{'CPU time by binary (perf, cpu-clock)':<58} share"]
    lines += [f"  {name:<56} {value:5.1f} %" for name, value in sorted(shares.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
