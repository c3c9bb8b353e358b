"""The `rebate` command: serve | worker | migrate | demo | audit | simulate | bench."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from app.config import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import PUBLIC_URL_VARIABLE, create_app

    settings = get_settings()
    public_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    public_base_url = f"http://{public_host}:{args.port}/"
    print(f"queue-rebate on {public_base_url}graphql ({settings.database_url})")
    if settings.fake_wechat:
        print(f"fake WeChat and the mini-program stand-in: {public_base_url}mock/")
    options = {"host": args.host, "port": args.port, "log_level": "info"}
    if not args.access_log:
        options["access_log"] = False
    if args.workers <= 1:
        from app.serving import Server

        app = create_app(settings, public_base_url=public_base_url, demo=args.demo)
        Server(uvicorn.Config(app, **options)).run()
        return 0
    if not settings.redis_url:
        # Each process would keep its own rate limits, figure cache and job timers.
        print("rebate serve --workers needs REDIS_URL", file=sys.stderr)
        return 2
    if not settings.is_production:
        from app.db import migrate_db

        # Once, here: the workers start together and must not race each other's migrations.
        asyncio.run(migrate_db(settings.database_url))
    if args.demo:
        from app.demo import load_demo

        asyncio.run(_with_db(load_demo))
    os.environ[PUBLIC_URL_VARIABLE] = public_base_url
    from app.serving import serve_processes

    return serve_processes(options, args.workers)


async def _with_db(coro_factory) -> int:
    from app.db import close_db, init_db

    settings = get_settings()
    await init_db(settings.database_url)
    try:
        return await coro_factory()
    finally:
        await close_db()


def _migrate(args: argparse.Namespace) -> int:
    from app.db import migrate_db

    asyncio.run(migrate_db(get_settings().database_url))
    print("database schema is up to date")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from app.db import migrate_db
    from app.demo import load_demo

    async def run() -> int:
        loaded = await load_demo()
        print("demo data loaded" if loaded else "the database already has products; nothing loaded")
        return 0

    asyncio.run(migrate_db(get_settings().database_url))
    return asyncio.run(_with_db(run))


def _audit(args: argparse.Namespace) -> int:
    from app.ledger.audit import audit

    async def run() -> int:
        violations = await audit()
        for violation in violations:
            print(f"VIOLATION: {violation}")
        print("audit: ok" if not violations else f"audit: {len(violations)} violation(s)")
        return 1 if violations else 0

    return asyncio.run(_with_db(run))


def _worker(args: argparse.Namespace) -> int:
    """An arq worker: settles, resets, notifies; any number of them on any number of machines."""
    from arq.connections import RedisSettings
    from arq.worker import Worker, check_health

    from app.wechat.client import WeChatGateway
    from app.wechat.credentials import resolve_credentials
    from workers.runtime import HEALTH_CHECK_KEY, QUEUE_NAME, worker_options

    settings = get_settings()
    if not settings.redis_url:
        print("rebate worker needs REDIS_URL (without it the server runs the jobs itself)")
        return 2
    redis_settings = RedisSettings.from_dsn(settings.redis_url)
    if args.check:
        return check_health(redis_settings, HEALTH_CHECK_KEY)
    credentials = resolve_credentials(settings, args.public_base_url)
    options = worker_options(WeChatGateway(credentials), database_url=settings.database_url)
    worker = Worker(**options, redis_settings=redis_settings, burst=args.burst)
    assert options["queue_name"] == QUEUE_NAME
    worker.run()
    return 0


def _bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.bench.runner import NAMES, run_benchmarks

    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(NAMES)}")
        return 2
    return run_benchmarks(args.names, args.scale, Path(args.output))


def _not_yet(name: str):
    def run(args: argparse.Namespace) -> int:
        print(f"rebate {name} is not available in this version", file=sys.stderr)
        return 2

    return run


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="rebate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="load demo data at start")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (more than one needs REDIS_URL)",
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log every request",
    )
    serve.set_defaults(run=_serve)
    commands.add_parser("migrate", help="create or upgrade the schema").set_defaults(run=_migrate)
    commands.add_parser("demo", help="load demo data").set_defaults(run=_demo)
    commands.add_parser("audit", help="check the ledger invariants").set_defaults(run=_audit)
    worker = commands.add_parser("worker", help="run an arq worker (needs REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    worker.add_argument("--check", action="store_true", help="exit 0 if a worker is healthy")
    worker.add_argument(
        "--public-base-url",
        default="http://127.0.0.1:8000/",
        help="the API's own base URL (where the fake WeChat lives in development)",
    )
    worker.set_defaults(run=_worker)
    bench = commands.add_parser("bench", help="run the benchmarks and print their figures")
    bench.add_argument("names", nargs="*", help="which benchmarks (default: all)")
    bench.add_argument("--scale", choices=("full", "small"), help="default: BENCH_SCALE or full")
    bench.add_argument("--output", default="var/bench.json", help="where the figures are written")
    bench.set_defaults(run=_bench)
    commands.add_parser("simulate", help="simulate (not available yet)").set_defaults(
        run=_not_yet("simulate")
    )
    args = parser.parse_args(argv)
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
