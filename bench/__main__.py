"""python -m bench: complete OIDC passkey sign-ins per second per core, beside the physical floor.

Starts `passgate serve` (one worker per core) on a throw-away PostgreSQL database, provisions passkeys
through Graph, warms up, runs fixed-duration steps of rising concurrency, then a step paced at 70 % of
the peak and a refresh-token step, and prints per step the rates, CPU per operation, latency
percentiles per HTTP step, memory per worker and errors. Traffic goes to 127.0.0.1 only; every step
is bounded in time and the run stops by itself. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import load, micro, profile
from .server import CpuMeter, CpuSample, Server, ThrowawayDatabase

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class StepResult:
    name: str
    concurrency: int
    seconds: float
    completed: int
    errors: int
    per_s: float
    server_cpu_s: float
    per_core_s: float  # operations per server CPU second
    server_cpu_ms_per_op: float
    db_cpu_ms_per_op: float
    generator_cpu_ms_per_op: float
    latency_ms: dict[str, tuple[float, float, float]]
    verified_id_tokens: int
    error_samples: list[str] = field(default_factory=list)


def summarise(name: str, concurrency: int, tally: load.Tally, before: CpuSample, after: CpuSample) -> StepResult:
    wall = after.at - before.at
    server = after.server - before.server
    n = max(tally.completed, 1)
    return StepResult(
        name=name, concurrency=concurrency, seconds=wall, completed=tally.completed, errors=tally.errors,
        per_s=tally.completed / wall, server_cpu_s=server,
        per_core_s=tally.completed / server if server > 0 else float("nan"),
        server_cpu_ms_per_op=1000 * server / n, db_cpu_ms_per_op=1000 * (after.database - before.database) / n,
        generator_cpu_ms_per_op=1000 * (after.generator - before.generator) / n,
        latency_ms={step: tuple(1000 * load.percentile(v, p) for p in (50, 95, 99))  # type: ignore[misc]
                    for step, v in tally.latencies.items()},
        verified_id_tokens=tally.verified_id_tokens, error_samples=tally.error_samples,
    )


def print_step(r: StepResult) -> None:
    print(f"  [{r.name}] c={r.concurrency:<3} {r.completed:>6} ok {r.errors:>3} err in {r.seconds:5.1f} s | "
          f"{r.per_s:7.1f}/s | {r.per_core_s:6.1f}/s per server core | server {r.server_cpu_ms_per_op:5.2f} ms, "
          f"postgres {r.db_cpu_ms_per_op:5.2f} ms, generator {r.generator_cpu_ms_per_op:5.2f} ms CPU per op")
    for step, (p50, p95, p99) in r.latency_ms.items():
        print(f"      {step:<17} p50 {p50:7.2f}  p95 {p95:7.2f}  p99 {p99:7.2f} ms")
    for sample in r.error_samples:
        print(f"      error: {sample}")


async def sampled(meter: CpuMeter, run: Any) -> tuple[Any, CpuSample, CpuSample]:
    """Await `run` between two CPU samples, sampling every second meanwhile: PostgreSQL backends of overflow
    connections exit when returned, and an exited backend's CPU can no longer be read."""

    async def keep_sampling() -> None:
        while True:
            await asyncio.sleep(1.0)
            meter.sample()

    before = meter.sample()
    sampler = asyncio.ensure_future(keep_sampling())
    try:
        value = await run
    finally:
        sampler.cancel()
    return value, before, meter.sample()


async def measured(meter: CpuMeter, name: str, concurrency: int, run: Any) -> StepResult:
    tally, before, after = await sampled(meter, run)
    result = summarise(name, concurrency, tally, before, after)
    print_step(result)
    return result


async def drive(args: argparse.Namespace, server: Server, meter: CpuMeter, floor: micro.Floor) -> dict[str, Any]:
    report: dict[str, Any] = {}
    provisioner = server.cli_json("apps", "add", "--name", "bench provisioning",
                                  "--permission", "User.ReadWrite.All",
                                  "--permission", "UserAuthenticationMethod.ReadWrite.All")
    web = server.cli_json("apps", "add", "--name", "bench web app", "--redirect-uri", load.REDIRECT_URI)
    target = load.Target(base_url=server.base_url, origin=server.origin, issuer=server.origin,
                         client_id=str(web["appId"]), client_secret=str(web["clientSecret"]),
                         username_first=not args.usernameless, follow_next=args.follow_next,
                         reuse_connections=args.reuse_connections)
    connections = max([*args.steps, args.provision_concurrency]) + 4
    async with load.new_client(server.base_url, connections) as client:
        token = await load.app_token(client, str(provisioner["appId"]), str(provisioner["clientSecret"]))
        print(f"Provisioning {args.users} users with a passkey each through Graph "
              f"({args.provision_concurrency} at a time)...")
        (users, tally), before, after = await sampled(meter, load.provision(
            client, token, server.origin, args.users, args.provision_concurrency, prefix=f"u{os.getpid()}-"))
        reg = summarise("registration", args.provision_concurrency, tally, before, after)
        print_step(reg)
        report["registration"] = asdict(reg)
        if not users:
            raise SystemExit("no user could be provisioned; see the errors above")

        verifier = load.Verifier(client, target)
        await verifier.load()
        print(f"Warm-up: {args.warmup:g} s at concurrency {min(4, max(args.steps))}")
        await load.run_window(client, target, verifier, users, load.sign_in, min(4, max(args.steps)), args.warmup)

        print(f"Sign-in steps of {args.duration:g} s (complete OIDC passkey sign-ins, fresh browser each):")
        steps = []
        for c in args.steps:
            steps.append(await measured(meter, "sign-in", c, load.run_window(
                client, target, verifier, users, load.sign_in, c, args.duration)))
        report["signin_steps"] = [asdict(s) for s in steps]
        peak = max(steps, key=lambda s: s.per_s)
        rate = 0.7 * peak.per_s
        print(f"At 70 % of the peak ({peak.per_s:.1f}/s at c={peak.concurrency}): paced at {rate:.1f}/s")
        paced = await measured(meter, "sign-in @70%", max(args.steps), load.run_window(
            client, target, verifier, users, load.sign_in, max(args.steps), args.duration, rate=rate))
        report["signin_at_70_percent"] = asdict(paced)

        if args.profile:
            spy = profile.record(meter.server.pid, args.duration, args.profile)
            if spy is None:
                print("py-spy is not installed (pip install py-spy): no profile taken")
            else:
                native_out = args.profile.with_suffix(".perf.data")
                native = profile.record_native(meter.worker_pids(), args.duration, native_out)
                print(f"Profiling the workers with py-spy{' and perf' if native else ''} for {args.duration:g} s "
                      f"at c={peak.concurrency}:")
                await measured(meter, "sign-in (profiled)", peak.concurrency, load.run_window(
                    client, target, verifier, users, load.sign_in, peak.concurrency, args.duration))
                for recorder in (spy, native):
                    if recorder is not None:
                        await asyncio.get_running_loop().run_in_executor(None, recorder.wait)
                print(profile.summarise(args.profile))
                if native is not None:
                    print(profile.summarise_native(native_out))

        print(f"Token refresh (refresh_token grant with rotation), {args.duration:g} s:")
        holders = [u for u in users if u.refresh_token]
        refresh = await measured(meter, "refresh", peak.concurrency, load.run_window(
            client, target, verifier, holders, load.refresh, peak.concurrency, args.duration))
        report["refresh"] = asdict(refresh)

        print(f"HTTP floor (GET /oauth2/jwks: no database), {args.duration / 2:g} s:")
        floor_step = await measured(meter, "http floor", peak.concurrency, load.run_window(
            client, target, verifier, users, load.http_floor, peak.concurrency, args.duration / 2))
        report["http_floor"] = asdict(floor_step)

    rss = meter.worker_rss_mb()
    report["rss_mb_per_worker"] = rss
    best = max(steps, key=lambda s: s.per_core_s)
    ms_per_signin = best.server_cpu_ms_per_op
    report["summary"] = {
        "signins_per_core_s": best.per_core_s, "server_cpu_ms_per_signin": ms_per_signin,
        "es256_verify_per_s": floor.es256_per_s, "webauthn_check_us": floor.webauthn_check_s * 1e6,
        "ratio_to_webauthn_check": ms_per_signin / 1000 / floor.webauthn_check_s,
        "ratio_to_es256_verify": ms_per_signin / 1000 / floor.es256_verify_s,
        "errors": sum(s.errors for s in steps) + paced.errors + refresh.errors + reg.errors + floor_step.errors,
        "http_floor_ms_per_request": floor_step.server_cpu_ms_per_op,
    }
    s = report["summary"]
    print("\nSummary")
    print(f"  sign-ins per second per core (server CPU): {s['signins_per_core_s']:.1f}  "
          f"({ms_per_signin:.2f} ms server CPU per sign-in, best step c={best.concurrency})")
    print(f"  physical floor on one core: ES256 verify {floor.es256_per_s:,.0f}/s "
          f"({floor.es256_verify_s * 1e6:.0f} µs); py_webauthn verify_authentication_response "
          f"{floor.webauthn_check_s * 1e6:.0f} µs ({floor.webauthn_per_s:,.0f}/s)")
    print(f"  server CPU per sign-in = {s['ratio_to_webauthn_check']:.1f} x the py_webauthn check "
          f"= {s['ratio_to_es256_verify']:.1f} x one ES256 verify")
    print(f"  registrations: {reg.per_s:.1f}/s wall, {reg.per_core_s:.1f}/s per server core")
    print(f"  refreshes: {refresh.per_s:.1f}/s wall, {refresh.per_core_s:.1f}/s per server core")
    print(f"  HTTP floor: {floor_step.server_cpu_ms_per_op:.2f} ms server CPU per request without database "
          f"(x{len(best.latency_ms)} requests = {len(best.latency_ms) * floor_step.server_cpu_ms_per_op:.2f} ms "
          f"of each sign-in)")
    print(f"  RSS per worker after the run: {', '.join(f'{m:.0f} MB' for m in rss)}")
    print(f"  errors: {s['errors']}")
    return report


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--users", type=int, default=10_000, help="passkeys provisioned (one user each)")
    p.add_argument("--provision-concurrency", type=int, default=16)
    p.add_argument("--steps", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4, 8, 16, 32],
                   help="concurrency of each sign-in step, comma separated")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per step")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up before the first step")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers (one per core)")
    p.add_argument("--postgres", default=os.environ.get("PASSGATE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
                   help="PostgreSQL server on which a throw-away database is created and dropped")
    p.add_argument("--sqlite", action="store_true", help="embedded SQLite instead (one worker; for quick checks)")
    p.add_argument("--usernameless", action="store_true", help="discoverable sign-in instead of username-first")
    p.add_argument("--reuse-connections", action="store_true",
                   help="browsers take kept connections from one shared pool instead of opening their own")
    p.add_argument("--follow-next", action="store_true",
                   help="the sign-in page does not send its way back: one more authorize request for the code")
    p.add_argument("--floor-seconds", type=float, default=3.0, help="CPU seconds for each raw crypto measurement")
    p.add_argument("--profile", type=Path, help="also profile the workers with py-spy during one more step at "
                   "the peak concurrency, write the collapsed stacks here and print where the CPU goes; where perf "
                   "works, also sample CPU time by binary (written beside it, as .perf.data)")
    p.add_argument("--json", type=Path, help="also write the whole report here")
    p.add_argument("--server-log", type=Path, help="where the server's output goes (default: a temp file)")
    args = p.parse_args(argv)
    if args.users < max(args.steps):
        p.error("--users must be at least the highest concurrency (a user signs in once at a time)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    started = time.time()
    print(f"Physical floor (one core, {args.floor_seconds:g} CPU s each)...")
    floor = micro.measure(args.floor_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="passgate-bench-"))
    database: ThrowawayDatabase | None = None
    if args.sqlite:
        url, workers = f"sqlite:///{tmp / 'passgate.db'}", 1
    else:
        database = ThrowawayDatabase(args.postgres)
        database.create()
        url, workers = database.url, args.workers
    server = Server(url, workers, log_path=args.server_log or tmp / "server.log")
    try:
        server.cli("migrate")
        process = server.start()
        meter = CpuMeter(process, database)
        print(f"passgate serve: {workers} worker(s) on {'SQLite' if args.sqlite else 'PostgreSQL'} "
              f"({database.name if database else url}), {server.base_url}; {os.cpu_count()} cores on this machine")
        report = asyncio.run(drive(args, server, meter, floor))
    finally:
        server.stop()
        if database is not None:
            database.drop()
    report["machine"] = {"nproc": os.cpu_count(), "workers": workers, "database": "sqlite" if args.sqlite else
                         "postgresql", "args": {k: str(v) for k, v in vars(args).items()}}
    report["floor"] = asdict(floor)
    print(f"Done in {time.time() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
