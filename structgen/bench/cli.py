"""``structgen bench masks|testsuite|generate|serve|fuzz|report``.

The main CLI (``structgen/cli.py``) calls :func:`add_parser` with its
subparsers and then ``args.func(args)``; ``python -m structgen.bench ...``
runs the same subcommands without the ``bench`` word (:func:`main`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

DEFAULT_MEMORY_MB = 8192


def _default_out(kind: str) -> str:
    return f"benchmarks/results/{kind}-{_dt.date.today().isoformat()}"


def _common(p: argparse.ArgumentParser, engines_default: str = "structgen") -> None:
    p.add_argument(
        "--engines",
        default=engines_default,
        help="comma-separated: structgen, llguidance, xgrammar, outlines-core (or 'all'); variants "
        "structgen-lenient, llguidance-lenient. Engines that are not installed are skipped "
        "(pip install 'structgen[bench]'). Default: %(default)s",
    )
    p.add_argument("--tokenizer", default="llama3", help="llama3, smollm2, a tokenizer.json or a local HF model dir (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per schema and engine (default: %(default)s)")
    p.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB, help="address-space limit of the worker, MB; 0 = none (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out, skipping what is done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_commands(sub) -> None:
    m = sub.add_parser(
        "masks",
        help="MaskBench: coverage, TTFM and TBM per engine",
        description="Compile each schema, walk each test instance token by token (mask, check, advance), "
        "classify and time it. The method: benchmarks/README.md, 'How masks measures'.",
    )
    m.add_argument("paths", nargs="+", help="MaskBench files or directories of them")
    _common(m)
    m.add_argument("--sample", type=int, default=None, help="a stratified (by source) random sample of N schemas")
    m.add_argument("--seed", type=int, default=0, help="seed of --sample (default: %(default)s)")
    m.add_argument("--out", default=None, help="output directory (default: benchmarks/results/maskbench-DATE)")
    m.add_argument("--compare", default=None, help="a baseline CSV (file,strict,lenient) to compare llguidance's outcomes with")
    m.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    m.add_argument("--note", action="append", default=[], help="a remark to print in the report (repeatable)")
    m.set_defaults(func=cmd_masks)

    t = sub.add_parser(
        "testsuite",
        help="JSON Schema Test Suite pass rate per file/keyword per engine",
        description="Run each test case of the JSON Schema Test Suite (e.g. tests/draft2020-12) through the same walk.",
    )
    t.add_argument("path", help="a test-suite directory (e.g. .../tests/draft2020-12) or one file")
    _common(t)
    t.add_argument("--optional", action="store_true", help="include the optional/ tests (formats, bignum, ...)")
    t.add_argument("--out", default=None, help="output directory (default: benchmarks/results/testsuite-DATE)")
    t.set_defaults(func=cmd_testsuite)

    g = sub.add_parser(
        "generate",
        help="end-to-end: ms per token constrained vs unconstrained, TTFT, validity",
        description="Generate with a model with and without the constraint, at batch sizes 1 and 4.",
    )
    from structgen.bench.generate import add_arguments

    add_arguments(g)
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser(
        "serve",
        help="inside vLLM: throughput, validity, compile errors and mask time per step, per backend",
        description="The same N requests (each a MaskBench schema with its own prompt) through vLLM's offline API with "
        "structgen's logits processor and with vLLM's own structured-output backends, each in a fresh engine. "
        "Needs vLLM (pip install 'structgen-hf[vllm]' or vllm; make test-vllm builds .venv-vllm).",
    )
    from structgen.bench.serve import add_arguments as add_serve_arguments

    add_serve_arguments(v)
    v.set_defaults(func=cmd_serve)

    z = sub.add_parser(
        "fuzz",
        help="random walks through compiled grammars' allowed tokens, every complete output validated",
        description="Compile MaskBench, Test Suite and hypothesis-generated schemas for each tokenizer, plain and as "
        "generation compiles them, and walk their allowed tokens at random (uniform, closing-biased, following a valid "
        "instance): counts outputs, invalid outputs and dead ends (see structgen/bench/fuzz.py). Exit 1 if any output "
        "is invalid or a promise of the engine broke.",
    )
    from structgen.bench.fuzz import add_arguments as add_fuzz_arguments

    add_fuzz_arguments(z)
    z.set_defaults(func=cmd_fuzz)

    r = sub.add_parser("report", help="rebuild the report of a (possibly interrupted) run from its results.jsonl")
    r.add_argument("dir", help="the run's output directory")
    r.add_argument("--compare", default=None, help="a baseline CSV, as for masks")
    r.add_argument("--no-plot", action="store_true")
    r.set_defaults(func=cmd_report)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``bench`` (with its subcommands) to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "bench",
        help="benchmarks: MaskBench masks, the JSON Schema Test Suite, end-to-end generation",
        description="Benchmarks, side by side with the peers (llguidance, xgrammar, outlines-core) where installed.",
    )
    sub = p.add_subparsers(dest="bench_command", metavar="{masks,testsuite,generate,serve,fuzz,report}")
    sub.required = True
    _add_commands(sub)
    return p


def cmd_masks(args: argparse.Namespace) -> int:
    from structgen.bench.maskbench import run_masks

    out = run_masks(
        args.paths,
        engines=args.engines,
        tokenizer=args.tokenizer,
        sample=args.sample,
        seed=args.seed,
        timeout=args.timeout,
        out=args.out or _default_out("maskbench"),
        resume=args.resume,
        memory_mb=args.memory_mb or None,
        progress=not args.no_progress,
        compare=args.compare,
        plot=not args.no_plot,
        notes=args.note,
    )
    print(f"report: {Path(out) / 'summary.md'}")
    return 0


def cmd_testsuite(args: argparse.Namespace) -> int:
    from structgen.bench.testsuite import run_testsuite

    path = run_testsuite(
        args.path,
        engines=args.engines,
        tokenizer=args.tokenizer,
        timeout=args.timeout,
        out=args.out or _default_out("testsuite"),
        resume=args.resume,
        memory_mb=args.memory_mb or None,
        optional=args.optional,
        progress=not args.no_progress,
    )
    print(f"report: {path}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from structgen.bench.generate import run

    return int(run(args) or 0)


def cmd_serve(args: argparse.Namespace) -> int:
    from structgen.bench.serve import run

    return int(run(args) or 0)


def cmd_fuzz(args: argparse.Namespace) -> int:
    from structgen.bench.fuzz import run

    return run(args)


def cmd_report(args: argparse.Namespace) -> int:
    from structgen.bench import report
    from structgen.bench.maskbench import RESULTS, load_records

    out = Path(args.dir)
    config = json.loads((out / "config.json").read_text())
    records = load_records(out / RESULTS)
    if config.get("command") == "testsuite":
        from structgen.bench.testsuite import write_report

        path = write_report(out, records, config["engines"], config["path"], config["tokenizer"])
    else:
        wanted = set(config.get("files") or [r.get("key") for r in records])
        records = [r for r in records if r.get("key") in wanted]
        path = report.write_masks_report(out, records, config, compare=args.compare, plot=not args.no_plot)
    print(f"report: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m structgen.bench", description="structgen benchmarks (the same as `structgen bench ...`).")
    sub = parser.add_subparsers(dest="bench_command", metavar="{masks,testsuite,generate,serve,fuzz,report}")
    sub.required = True
    _add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
