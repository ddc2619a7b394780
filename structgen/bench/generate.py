"""``structgen bench generate``: what constraining costs end to end.

One model (the packaged SmolLM2-135M-Instruct by default), greedy decoding,
the same prompts, at each batch size:

* ``unconstrained``: ``model.generate`` alone;
* ``structgen``: ``model.generate`` with ``structgen.LogitsProcessor``;
* ``structgen.generate``: structgen's own decoding loop (jump-forward on);
* ``xgrammar``: ``model.generate`` with ``xgrammar.contrib.hf.LogitsProcessor``;
* ``llguidance``: ``model.generate`` with a minimal processor over
  ``LLMatcher`` (llguidance ships no transformers processor).

Reported per row: ms per generated token after the first (decode steps),
time to first token (prefill + first mask, with the grammar already
compiled), the one-off compile time, the overhead against unconstrained
decoding, and how many outputs parse as JSON and validate against the schema.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "pattern": "^[a-z0-9.]+@[a-z0-9]+\\.[a-z]{2,4}$"},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 4},
        "employed": {"type": "boolean"},
    },
    "required": ["name", "age", "email", "hobbies", "employed"],
    "additionalProperties": False,
}
PROMPTS = [
    "Invent a person and describe them as a JSON object with name, age, email, hobbies and employed.",
    "Describe a retired chess teacher as JSON (name, age, email, hobbies, employed).",
    "Give me a JSON record for a young software engineer: name, age, email, hobbies, employed.",
    "Create a JSON profile of a fictional painter with fields name, age, email, hobbies, employed.",
]
ENGINES = ("structgen", "structgen.generate", "xgrammar", "llguidance")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model name/path (default: the packaged SmolLM2-135M-Instruct)")
    p.add_argument("--schema", default=None, help="a JSON Schema file (default: a small person schema)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="default: %(default)s")
    p.add_argument("--batch-sizes", default="1,4", help="default: %(default)s")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up (default: %(default)s)")
    p.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="constrained variants to run besides unconstrained; those not installed are skipped (default: %(default)s)",
    )
    p.add_argument("--whitespace", default="compact", help="structgen's JSON whitespace policy (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", default=None, help="output directory (default: benchmarks/results/generate-DATE)")


# --------------------------------------------------------------------------- processors


def _llguidance_processor(schema: dict, tokenizer: Any, lltok: Any):
    import llguidance
    import numpy as np
    import torch
    from transformers import LogitsProcessor

    eos = int(tokenizer.eos_token_id)
    grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults={"whitespace_flexible": False})

    class LLGuidanceProcessor(LogitsProcessor):
        def __init__(self) -> None:
            self.matchers: list[Any] = []
            self.prompt_len = None
            n = lltok.vocab_size
            self.n = n

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if self.prompt_len is None:
                self.prompt_len = input_ids.shape[1]
                self.matchers = [llguidance.LLMatcher(lltok, grammar, log_level=0) for _ in range(input_ids.shape[0])]
                self.bits = np.zeros((input_ids.shape[0], (self.n + 31) // 32), dtype=np.int32)
            else:
                last = input_ids[:, -1].tolist()
                for m, t in zip(self.matchers, last):
                    if not m.is_stopped():
                        m.consume_token(t)
            for i, m in enumerate(self.matchers):
                if m.is_stopped():
                    row = self.bits[i].view(np.uint32)
                    row[:] = 0
                    row[eos >> 5] = np.uint32(1 << (eos & 31))
                else:
                    m.unsafe_compute_mask_ptr(self.bits[i].ctypes.data, self.bits[i].nbytes)
            allowed = np.unpackbits(self.bits.view(np.uint8), axis=1, bitorder="little")[:, : scores.shape[1]].astype(bool)
            if allowed.shape[1] < scores.shape[1]:
                allowed = np.pad(allowed, ((0, 0), (0, scores.shape[1] - allowed.shape[1])))
            return scores.masked_fill(~torch.from_numpy(allowed), float("-inf"))

    return LLGuidanceProcessor


# --------------------------------------------------------------------------- measurement


def _valid(text: str, schema: dict) -> bool:
    from structgen.frontends.json_schema import schema_validator, validation_errors

    try:
        return not validation_errors(schema_validator(schema), json.loads(text))
    except Exception:
        return False


def _run_hf(model, tokenizer, inputs, max_new_tokens: int, make_proc, eos: int, pad: int) -> tuple[float, float, list[str], int]:
    """(total seconds, seconds to first token, texts, decode steps)."""
    import torch
    from transformers import LogitsProcessorList

    kwargs = dict(do_sample=False, pad_token_id=pad, eos_token_id=eos)
    procs = LogitsProcessorList([make_proc()]) if make_proc else None
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(**inputs, max_new_tokens=1, logits_processor=procs, **kwargs)
    ttft = time.perf_counter() - t0
    procs = LogitsProcessorList([make_proc()]) if make_proc else None
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, logits_processor=procs, **kwargs)
    total = time.perf_counter() - t0
    gen = out[:, inputs["input_ids"].shape[1] :]
    steps = gen.shape[1]
    texts = [tokenizer.decode(row, skip_special_tokens=True) for row in gen]
    return total, ttft, texts, steps


def run(args: argparse.Namespace) -> int:
    import torch

    import structgen

    if args.threads:
        torch.set_num_threads(args.threads)
    schema = json.loads(Path(args.schema).read_text()) if args.schema else DEFAULT_SCHEMA
    model, tokenizer = structgen.load_model(args.model)
    eos = int(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    tokenizer.padding_side = "left"
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    makers: dict[str, Any] = {"unconstrained": None}
    compile_ms: dict[str, float] = {}
    if "structgen" in wanted or "structgen.generate" in wanted:
        try:
            LP = structgen.LogitsProcessor
            t0 = time.perf_counter()
            structgen.compile_json_schema(schema, tokenizer, whitespace=args.whitespace)
            compile_ms["structgen"] = (time.perf_counter() - t0) * 1000
            if "structgen" in wanted:
                # the schema's literal meaning, as the peers below compile it (strict_mode=False)
                makers["structgen"] = lambda: LP(schema, tokenizer, whitespace=args.whitespace, closed_objects=False)
        except (AttributeError, ImportError) as e:
            print(f"structgen.LogitsProcessor is not available yet ({e}); skipping it", file=sys.stderr)
    if "xgrammar" in wanted:
        try:
            import xgrammar as xgr
            import xgrammar.contrib.hf as xhf

            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=model.config.vocab_size, stop_token_ids=[eos])
            t0 = time.perf_counter()
            cg = xgr.GrammarCompiler(info, max_threads=1).compile_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=False)
            compile_ms["xgrammar"] = (time.perf_counter() - t0) * 1000
            makers["xgrammar"] = lambda: xhf.LogitsProcessor(cg)
        except ImportError:
            print("xgrammar is not installed; skipping it", file=sys.stderr)
    if "llguidance" in wanted:
        try:
            import llguidance
            import llguidance.hf

            lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=model.config.vocab_size, eos_token=eos)
            t0 = time.perf_counter()
            cls = _llguidance_processor(schema, tokenizer, lltok)
            llguidance.LLMatcher(lltok, llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults={"whitespace_flexible": False}), log_level=0)
            compile_ms["llguidance"] = (time.perf_counter() - t0) * 1000
            makers["llguidance"] = cls
        except ImportError:
            print("llguidance is not installed; skipping it", file=sys.stderr)

    rows = []
    for bs in batch_sizes:
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(bs)]
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        for name, make in makers.items():
            runs = []
            for rep in range(args.repeats + 1):
                total, ttft, outs, steps = _run_hf(model, tokenizer, inputs, args.max_new_tokens, make, eos, pad)
                if rep:
                    runs.append((total, ttft, outs, steps, steps))
            rows.append(_row(name, bs, runs, schema))
            print(_fmt_row(rows[-1]), file=sys.stderr)
        if "structgen.generate" in wanted and hasattr(structgen, "generate"):
            runs = []
            for rep in range(args.repeats + 1):
                t0 = time.perf_counter()
                res = structgen.generate(
                    schema, prompts if bs > 1 else prompts[0], model=model, tokenizer=tokenizer,
                    max_new_tokens=args.max_new_tokens, whitespace=args.whitespace, return_details=True,
                )
                total = time.perf_counter() - t0
                res = res if isinstance(res, list) else [res]
                outs = [getattr(r, "text", "") for r in res]
                stats = getattr(res[0], "stats", None)
                tokens = max(len(getattr(r, "token_ids", []) or []) for r in res)
                steps = getattr(stats, "forward_passes", 0) or tokens
                if rep:
                    runs.append((total, float("nan"), outs, max(steps, 1), max(tokens, 1)))
            base_ttft = next((r["ttft_ms"] / 1000 for r in rows if r["engine"] == "unconstrained" and r["batch"] == bs), None)
            rows.append(_row("structgen.generate", bs, runs, schema, base_ttft))
            print(_fmt_row(rows[-1]), file=sys.stderr)

    base = {r["batch"]: r["ms_per_token"] for r in rows if r["engine"] == "unconstrained"}
    for r in rows:
        b = base.get(r["batch"])
        r["overhead_pct"] = None if not b or r["engine"] == "unconstrained" else round(100 * (r["ms_per_token"] / b - 1), 1)
        r["compile_ms"] = round(compile_ms.get(r["engine"].split(".")[0] if r["engine"] != "structgen.generate" else "structgen", float("nan")), 1)
    out = Path(args.out or f"benchmarks/results/generate-{_dt.date.today().isoformat()}")
    out.mkdir(parents=True, exist_ok=True)
    from structgen.bench.report import machine_info

    info = machine_info(args.model or "SmolLM2-135M-Instruct", list(makers))
    (out / "results.json").write_text(json.dumps({"machine": info, "schema": schema, "args": vars(args) | {"func": None}, "rows": rows}, indent=1, default=str) + "\n")
    lines = [
        "# End-to-end generation\n",
        f"Model `{args.model or 'SmolLM2-135M-Instruct'}` on CPU, greedy, max {args.max_new_tokens} new tokens, "
        f"{args.repeats} timed repeats after a warm-up (medians), torch threads {torch.get_num_threads()}. "
        "ms/step = (total − time to first token) / (decode steps − 1), the cost of one decoding step; overhead "
        "against unconstrained at the same batch size. structgen.generate runs its own loop: its steps are forward "
        "passes (jump-forward appends forced tokens without one), its prefill is taken to be the unconstrained "
        "one, and ms/output token divides by the tokens produced instead. Compile is the one-off grammar "
        "compile (TTFT is measured with the grammar already compiled). Valid: outputs that parse and validate "
        "with jsonschema (a cut-off output is not).\n",
        "| engine | batch | ms/step | overhead | ms/output token | TTFT (ms) | compile (ms) | steps | tokens | valid outputs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        overhead = "–" if r["overhead_pct"] is None else f"{r['overhead_pct']:+.1f}%"
        ttft = "–" if r["ttft_ms"] != r["ttft_ms"] else f"{r['ttft_ms']:.1f}"
        comp = "–" if r["compile_ms"] != r["compile_ms"] else f"{r['compile_ms']:.1f}"
        lines.append(
            f"| {r['engine']} | {r['batch']} | {r['ms_per_token']:.2f} | {overhead} | {r['ms_per_output_token']:.2f} | "
            f"{ttft} | {comp} | {r['steps']} | {r['tokens']} | {r['valid']}/{r['outputs']} |"
        )
    m = info
    lines.append(f"\nMachine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + f", {m['date']}.\n")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"report: {out / 'summary.md'}")
    return 0


def _row(name: str, bs: int, runs: list, schema: dict, base_ttft: float | None = None) -> dict:
    """``runs``: (total s, time to first token s or NaN, texts, decode steps, output tokens).
    A run with no TTFT of its own (structgen.generate) uses ``base_ttft``, the
    unconstrained prefill at the same batch size."""
    per_step, per_out, ttfts = [], [], []
    for total, ttft, _, steps, tokens in runs:
        if ttft != ttft:
            ttft = base_ttft if base_ttft is not None else 0.0
        ttfts.append(ttft)
        per_step.append((total - ttft) / max(steps - 1, 1) * 1000)
        per_out.append((total - ttft) / max(tokens - 1, 1) * 1000)
    outs = runs[-1][2]
    own_ttft = all(r[1] == r[1] for r in runs)
    return {
        "engine": name,
        "batch": bs,
        "ms_per_token": statistics.median(per_step),
        "ms_per_output_token": statistics.median(per_out),
        "ttft_ms": statistics.median(ttfts) * 1000 if own_ttft else float("nan"),
        "total_s": statistics.median(r[0] for r in runs),
        "steps": runs[-1][3],
        "tokens": runs[-1][4],
        "outputs": len(outs),
        "valid": sum(_valid(t, schema) for t in outs),
        "sample_output": outs[0][:300] if outs else "",
    }


def _fmt_row(r: dict) -> str:
    return f"{r['engine']:>20} batch {r['batch']}: {r['ms_per_token']:.2f} ms/step, {r['valid']}/{r['outputs']} valid"
