"""The system under test: a throw-away PostgreSQL database, `passgate serve` on 127.0.0.1, and the CPU
and memory of both, read from /proc through psutil."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def passgate_command() -> list[str]:
    found = Path(sys.executable).with_name("passgate")
    if found.exists():
        return [str(found)]
    on_path = shutil.which("passgate")
    return [on_path] if on_path else [sys.executable, "-m", "passgate"]


class ThrowawayDatabase:
    """A database created for one run on the given server and dropped (connections and all) at the end."""

    def __init__(self, admin_url: str) -> None:
        url = make_url(admin_url)
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        self.admin_url = url
        self.name = f"passgate_bench_{uuid.uuid4().hex[:10]}"
        self.url = url.set(database=self.name).render_as_string(hide_password=False)
        self._admin: Engine | None = None

    def create(self) -> None:
        self._admin = create_engine(self.admin_url.render_as_string(hide_password=False),
                                    isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))

    def backend_pids(self) -> list[int]:
        assert self._admin is not None
        with self._admin.connect() as conn:
            rows = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": self.name})
            return [int(r[0]) for r in rows]

    def drop(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()
        self._admin = None


@dataclass
class CpuSample:
    server: float  # CPU seconds of every Passgate process (supervisor and workers)
    database: float  # CPU seconds of the PostgreSQL backends serving this database
    generator: float  # CPU seconds of the load generator itself
    at: float


class CpuMeter:
    """Process CPU time, which other tenants of the machine do not inflate (wall-clock rates they do).

    PostgreSQL backends come and go with pooled connections: a backend seen for the first time counts from
    zero (it was born after the previous sample, or was idle), one that vanished is lost only for its last
    interval, which stays small because samples are taken at every window's edges."""

    def __init__(self, server: psutil.Process, database: ThrowawayDatabase | None) -> None:
        self.server = server
        self.database = database
        self.me = psutil.Process()
        self._pg_last: dict[int, float] = {}
        self._pg_total = 0.0

    def server_processes(self) -> list[psutil.Process]:
        return [self.server, *self.server.children(recursive=True)]

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0.0

    def _database_cpu(self) -> float:
        if self.database is None:
            return 0.0
        seen: dict[int, float] = {}
        for pid in self.database.backend_pids():
            try:
                seen[pid] = self._cpu(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        for pid, value in seen.items():
            self._pg_total += value - self._pg_last.get(pid, 0.0)
        self._pg_last = seen
        return self._pg_total

    def sample(self) -> CpuSample:
        server = sum(self._cpu(p) for p in self.server_processes())
        t = self.me.cpu_times()
        return CpuSample(server=server, database=self._database_cpu(), generator=t.user + t.system,
                         at=time.perf_counter())

    def workers(self) -> list[psutil.Process]:
        """The worker processes (the uvicorn supervisor, when there is one, is not a worker)."""
        children = self.server.children(recursive=True)
        # multiprocessing's resource tracker is a child too; workers are the ones that import Passgate.
        return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())] or [self.server]

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker."""
        out = []
        for p in self.workers():
            try:
                out.append(p.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        return out

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.workers()]


class Server:
    """`passgate serve` with production settings: one worker per core, on the given database."""

    def __init__(self, database_url: str, workers: int, port: int | None = None, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.origin = f"http://localhost:{self.port}"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ, "PASSGATE_DATABASE_URL": database_url, "PASSGATE_PORT": str(self.port),
            "PASSGATE_ORIGINS": self.origin, "PASSGATE_RP_ID": "localhost", **(extra_env or {}),
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run([*passgate_command(), *args], env=self.env, capture_output=True, check=False,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"passgate {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def cli_json(self, *args: str) -> dict[str, object]:
        out = self.cli(*args, "--json")
        start = out.index("{")
        value: dict[str, object] = json.loads(out[start:])
        return value

    def start(self, timeout: float = 90.0) -> psutil.Process:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [*passgate_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"passgate serve exited with {self.process.returncode} (see {self.log_path})")
            try:
                if httpx.get(f"{self.base_url}/.well-known/openid-configuration", timeout=2,
                             trust_env=False).status_code == 200:
                    proc = psutil.Process(self.process.pid)
                    if self.workers == 1 or len(CpuMeter(proc, None).worker_pids()) >= self.workers:
                        return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"passgate serve did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # Only the process group this run started (start_new_session above), never anything else.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
