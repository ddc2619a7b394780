"""How a batch bitmask fill scales with threads (structgen.fill_next_token_bitmask_batch).

A serving step asks for the masks of every row at once. Each row here is a
different MaskBench schema (its own compiled grammar) following one of its
valid instances, tokenized with Llama-3, one token per step, as a batch of
``--batch`` requests decoding side by side. Every step fills the int32 batch
bitmask; the rows' states are mostly new (cold masks) early on and repeat
later. The same replay runs with ``threads=1`` and with more threads, each on
grammars compiled afresh (so both meet the same cold states), and reports the
time per step and per row, cold and warm. Compile time is not included.

    .venv/bin/python benchmarks/batch_fill.py --batch 16 --threads 1,2

Writes ``benchmarks/results/batch-fill-<date>.{json,md}``. Only the token-trie
walk releases the GIL (the lazy DFA's derivatives hold it), so the gain from
threads is bounded by the share of a cold mask spent in that walk.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structgen  # noqa: E402
from structgen.bench.tokenizers import load_tokenizer  # noqa: E402
from structgen.compile import as_vocabulary  # noqa: E402
from structgen.errors import StructgenError  # noqa: E402

MASKBENCH = Path(os.environ.get("MASKBENCH_DIR", ROOT.parent / "shared" / "data" / "maskbench-dev"))


def workload(tokenizer, vocab, batch: int, seed: int) -> list[tuple[dict, list[int]]]:
    """``batch`` (schema, token ids of a valid instance) pairs from distinct
    schemas that structgen compiles and accepts."""
    files = sorted(MASKBENCH.glob("*.json"))
    random.Random(seed).shuffle(files)
    chosen = []
    for path in files:
        task = json.loads(path.read_text())
        valid = [t["data"] for t in task["tests"] if t["valid"]]
        if not valid:
            continue
        text = json.dumps(valid[0], ensure_ascii=False)
        ids = tokenizer.encode(text, add_special_tokens=False)
        try:
            m = structgen.compile_json_schema(task["schema"], vocab, whitespace="flexible").matcher()
        except StructgenError:
            continue
        if m.validate_tokens(ids) != len(ids):
            continue
        chosen.append((task["schema"], ids))
        if len(chosen) == batch:
            break
    return chosen


def compile_rows(rows, vocab) -> list:
    """Fresh compiled grammars for the rows (none of their masks cached)."""
    from structgen.frontends.json_schema import json_schema_to_grammar

    return [structgen.CompiledGrammar(json_schema_to_grammar(s, whitespace="flexible"), vocab) for s, _ in rows]


def replay(grammars, rows, vocab, threads: int) -> dict:
    """Fill the batch bitmask at every step of the rows' token sequences (a
    row that has finished keeps its last state); the time of each fill."""
    matchers = [g.matcher() for g in grammars]
    bitmask = structgen.allocate_token_bitmask(len(rows), len(vocab.token_bytes))
    times = []
    for step in range(max(len(ids) for _, ids in rows)):
        t = time.perf_counter()
        structgen.fill_next_token_bitmask_batch(matchers, bitmask, threads=threads)
        times.append(time.perf_counter() - t)
        for m, (_, ids) in zip(matchers, rows):
            if step < len(ids) and not m.advance(ids[step]):
                raise RuntimeError("a valid instance was refused")
    return {"step_s": times}


def summarize(label: str, runs: dict[int, list[dict]], batch: int) -> list[str]:
    lines = [f"| threads | {label} step total (ms) | per step, median (µs) | per step, p90 (µs) | per row, mean (µs) | speed-up |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = None
    for threads, reps in runs.items():
        totals = [sum(r["step_s"]) for r in reps]
        best = min(range(len(reps)), key=lambda k: totals[k])
        steps = reps[best]["step_s"]
        total = totals[best]
        base = base or total
        per = sorted(steps)
        lines.append(
            f"| {threads} | {total * 1e3:.1f} | {statistics.median(per) * 1e6:.0f} | {per[int(0.9 * (len(per) - 1))] * 1e6:.0f} "
            f"| {total / len(steps) / batch * 1e6:.1f} | {base / total:.2f}× |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3, help="replays per thread count (best one reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    tokenizer = load_tokenizer("llama3")
    vocab = as_vocabulary(tokenizer)
    rows = workload(tokenizer, vocab, args.batch, args.seed)
    print(f"{len(rows)} schemas, {sum(len(i) for _, i in rows)} tokens, up to {max(len(i) for _, i in rows)} steps",
          file=sys.stderr)
    counts = [int(t) for t in args.threads.split(",")]
    cold: dict[int, list[dict]] = {t: [] for t in counts}
    warm: dict[int, list[dict]] = {t: [] for t in counts}
    for rep in range(args.repeats):
        for threads in counts:  # alternate, so a slow minute hurts every setting alike
            cold[threads].append(replay(compile_rows(rows, vocab), rows, vocab, threads))
            print(f"  repeat {rep + 1}/{args.repeats}, threads={threads}: cold "
                  f"{sum(cold[threads][-1]['step_s']) * 1e3:.0f} ms", file=sys.stderr)
    grammars = compile_rows(rows, vocab)
    replay(grammars, rows, vocab, 1)  # every state's mask is cached from here on
    for rep in range(args.repeats):
        for threads in counts:
            warm[threads].append(replay(grammars, rows, vocab, threads))

    date = _dt.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    md = [
        f"# Batch bitmask fill, {date}",
        "",
        f"`benchmarks/batch_fill.py --batch {args.batch} --threads {args.threads}`: {len(rows)} MaskBench schemas, "
        f"one valid instance each (Llama-3 tokens), every step fills the whole batch. Machine: {machine}.",
        "",
        "Cold: every grammar compiled afresh, so the states' masks are computed during the fills.",
        "",
        *summarize("cold", cold, len(rows)),
        "",
        "Warm: every state's mask already cached (a copy per row).",
        "",
        *summarize("warm", warm, len(rows)),
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"batch-fill-{date}.md").write_text("\n".join(md))
    (args.out / f"batch-fill-{date}.json").write_text(json.dumps(
        {"machine": machine, "batch": len(rows), "cold": cold, "warm": warm}, indent=1))
    print("\n".join(md))


if __name__ == "__main__":
    main()
