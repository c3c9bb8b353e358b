"""One benchmark's figures, the line it prints, the progress bar it shows, and var/bench.json."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class BenchResult:
    name: str
    value: float
    unit: str
    target: str
    met: bool
    baseline: float | None = None
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        baseline = "-" if self.baseline is None else _number(self.baseline)
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        verdict = "MET" if self.met else "MISSED"
        return (
            f"bench {self.name}: {_number(self.value)} {self.unit} | target {self.target} | "
            f"baseline {baseline} | ratio {ratio} | {verdict}"
        )


def _number(value: float) -> str:
    if value != value:  # NaN: the benchmark failed
        return "nan"
    if value == int(value) and abs(value) >= 100:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}"


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal, else a line per 10%)."""

    def __init__(self, name: str, stream: Any = None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.stage = ""
        self._last_tenth = -1
        self._last_draw = 0.0

    def update(self, done: float, total: float, stage: str | None = None) -> None:
        if stage is not None and stage != self.stage:
            self.stage = stage
            self._last_tenth = -1
        fraction = 0.0 if total <= 0 else min(1.0, max(0.0, done / total))
        if self.tty:
            now = time.monotonic()
            if fraction < 1.0 and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            filled = int(fraction * 30)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r  {self.name:<12} [{bar}] {fraction:6.1%} {self.stage:<32}")
            self.stream.flush()
        else:
            tenth = int(fraction * 10)
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self.stream.write(f"  {self.name}: {self.stage} {tenth * 10}%\n")
                self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def write_json(results: list[BenchResult], path: Path, *, scale: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "scale": scale,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction in 0..1) of `samples`."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]
