"""Where time to first mask goes: compile + first mask per MaskBench schema,
in this process, with an optional cProfile of the whole sample.

MaskBench (``python -m structgen.bench masks``) gives the official TTFM, one
worker per engine with limits; this is the quick loop for working on it:

    .venv/bin/python benchmarks/ttfm_profile.py ../shared/data/maskbench-dev \
        --sample 300 --seed 7 [--profile 25] [--slowest 15]

It prints TTFM p50/p90/p99 over the schemas that compile, the slowest
schemas, and (``--profile N``) the N functions with the most own time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structgen.bench.engines import CompileError, make_engine  # noqa: E402
from structgen.bench.maskbench import discover, stratified_sample  # noqa: E402
from structgen.bench.tokenizers import load_tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--sample", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    ap.add_argument("--slowest", type=int, default=10, metavar="N")
    ap.add_argument("--exclude", default="", help="comma-separated file names to leave out")
    args = ap.parse_args()

    files = stratified_sample(discover(args.paths), args.sample, args.seed)
    excluded = {x for x in args.exclude.split(",") if x}
    files = [f for f in files if f.name not in excluded]
    engine = make_engine("structgen", load_tokenizer(args.tokenizer))
    profiler = cProfile.Profile() if args.profile else None
    times: list[tuple[float, str]] = []
    for i, f in enumerate(files):
        schema = json.loads(f.read_text())["schema"]
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        try:
            engine.compile(schema).session().mask()
        except CompileError:
            ok = False
        else:
            ok = True
        dt = (time.perf_counter() - t0) * 1000
        if profiler:
            profiler.disable()
        engine.after_schema()
        gc.collect()  # as the MaskBench worker does between schemas
        gc.freeze()
        if ok:
            times.append((dt, f.name))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(files)}", file=sys.stderr)
    ms = sorted(t for t, _ in times)

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, int(p * len(ms)))]

    print(f"{len(ms)} schemas compiled: TTFM p50 {q(0.5):.2f} ms, p90 {q(0.9):.1f} ms, "
          f"p99 {q(0.99):.1f} ms, sum {sum(ms) / 1000:.1f} s")
    for dt, name in sorted(times, reverse=True)[: args.slowest]:
        print(f"  {dt:9.1f} ms  {name}")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
