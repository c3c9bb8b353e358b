"""Runs the benchmarks in order, prints one line each, and writes var/bench.json."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path

from app.bench.infra import BenchEnv
from app.bench.report import BenchResult, Progress, write_json
from app.bench.scale import SCALES
from app.bench.seed import drop_shared

NAMES = ("engine", "settle", "notify", "progress", "entries_http", "memory")


def run_benchmarks(names: list[str] | None, scale_name: str | None, output: Path) -> int:
    # A line per request of a load or of the scene-setting would bury the figures.
    for noisy in ("httpx", "tortoise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scale = SCALES[scale_name or os.environ.get("BENCH_SCALE", "full") or "full"]
    env = BenchEnv.from_environ()
    chosen = names or list(NAMES)
    results: list[BenchResult] = []
    print(f"queue-rebate benchmarks, scale {scale.name}", flush=True)
    try:
        for name in chosen:
            module = importlib.import_module(f"app.bench.{name}")
            progress = Progress(name)
            try:
                result = asyncio.run(module.run(scale, progress, env))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                progress.close()
                traceback.print_exc(file=sys.stderr)
                result = BenchResult(
                    name=name,
                    value=float("nan"),
                    unit="-",
                    target="-",
                    met=False,
                    details={"error": f"{type(exc).__name__}: {exc}"},
                )
            progress.close()
            results.append(result)
            print(result.line(), flush=True)
            write_json(results, output, scale=scale.name)
    finally:
        asyncio.run(drop_shared(env))
    return 0 if all(result.met for result in results) else 1
