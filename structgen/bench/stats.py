"""Timing distributions that can be merged and stored compactly.

A run over MaskBench times about a million masks per engine; storing each one
in the per-schema results would make them tens of megabytes. Each schema keeps
instead the exact count, sum and maximum, and a log-scale histogram with
``BINS_PER_DECADE`` bins per factor of ten (2.3% wide: a percentile read back
is within about 1.2% of the exact one). Histograms of all schemas add up into
the distribution the report's percentiles are read from.
"""

from __future__ import annotations

import math
from typing import Iterable

BINS_PER_DECADE = 100
PERCENTILES = (25, 50, 75, 90, 95, 99, 99.9)


class Dist:
    """Count, sum, max (exact) and a log histogram of durations in µs."""

    __slots__ = ("n", "total", "max", "hist")

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self.hist: dict[int, int] = {}

    def add_ns(self, ns: int) -> None:
        us = ns / 1000.0
        self.n += 1
        self.total += us
        if us > self.max:
            self.max = us
        k = _bin(us)
        self.hist[k] = self.hist.get(k, 0) + 1

    def add_us(self, us: float) -> None:
        self.add_ns(int(round(us * 1000)))

    def merge(self, other: "Dist") -> None:
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)
        for k, c in other.hist.items():
            self.hist[k] = self.hist.get(k, 0) + c

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "sum_us": round(self.total, 3),
            "max_us": round(self.max, 3),
            "hist": {str(k): c for k, c in sorted(self.hist.items())},
        }

    @classmethod
    def from_json(cls, d: dict | None) -> "Dist":
        out = cls()
        if d:
            out.n = int(d.get("n", 0))
            out.total = float(d.get("sum_us", 0.0))
            out.max = float(d.get("max_us", 0.0))
            out.hist = {int(k): int(c) for k, c in (d.get("hist") or {}).items()}
        return out

    @property
    def avg(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def percentile(self, p: float) -> float:
        """The p-th percentile (nearest rank), as the bin's geometric centre,
        capped at the exact maximum."""
        if not self.n:
            return float("nan")
        rank = max(1, math.ceil(p / 100.0 * self.n))
        seen = 0
        for k in sorted(self.hist):
            seen += self.hist[k]
            if seen >= rank:
                return min(_centre(k), self.max)
        return self.max

    def cdf(self) -> tuple[list[float], list[float]]:
        """(x in µs, fraction ≤ x) at each bin's upper edge, for plots."""
        xs, ys = [], []
        seen = 0
        for k in sorted(self.hist):
            seen += self.hist[k]
            xs.append(10 ** ((k + 1) / BINS_PER_DECADE) / 1000.0)
            ys.append(seen / self.n)
        return xs, ys


def _bin(us: float) -> int:
    ns = max(us * 1000.0, 1.0)
    return int(math.floor(math.log10(ns) * BINS_PER_DECADE))


def _centre(k: int) -> float:
    return 10 ** ((k + 0.5) / BINS_PER_DECADE) / 1000.0


def exact_percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile of a list (TTFM: one value per schema)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[rank - 1]
