"""The transformers LogitsProcessor's own time per decoding step, at batch 1, 8 and 32.

The default model (SmolLM2-135M-Instruct) first samples 32 outputs under
structgen's processor (temperature 0.7, seeded), and their token ids are
saved. Each processor is then *replayed* on those ids: at step ``k`` it gets
the rows' prompt plus their first ``k`` generated tokens and a logits tensor
of the model's width, exactly as ``model.generate`` would call it, and only
the call is timed (outputs whose properties are out of declaration order are
left out when xgrammar is installed: its processor refuses them). No forward pass runs during the replay, so the figures
are the processor's cost alone and the same for every processor and every
version of structgen: run the script at another commit (``PYTHONPATH``
pointing at a checkout of it) with the same ``--tokens`` file to compare.

    .venv/bin/python benchmarks/processor_cost.py --label after
    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/processor_cost.py --label before --tokens <the same file>

Processors: structgen's, and xgrammar's ``xgrammar.contrib.hf.LogitsProcessor``
when xgrammar is installed. A processor is built fresh for each replay; the
first replay in the process is *cold* (no mask cached yet), the later ones
are *warm*. Writes ``<out>/<label>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another checkout's structgen wins

import structgen  # noqa: E402
from structgen.bench.generate import DEFAULT_SCHEMA, PROMPTS  # noqa: E402
from structgen.integrations.generate import default_model  # noqa: E402

BATCHES = (1, 8, 32)


def record(model, tok, schema: dict, rows: int, max_new_tokens: int, seed: int) -> dict:
    """Sample ``rows`` outputs under structgen's processor; the full id rows
    (left-padded prompt, output, padding after EOS)."""
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(rows)]
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    tok.padding_side = side
    torch.manual_seed(seed)
    proc = structgen.LogitsProcessor(schema, tok)
    with torch.inference_mode():
        out = model.generate(**enc, logits_processor=[proc], max_new_tokens=max_new_tokens, do_sample=True,
                             temperature=0.7, pad_token_id=tok.pad_token_id)
    return {"ids": out.tolist(), "attention": enc["attention_mask"].tolist(), "prompt_len": enc["input_ids"].shape[1],
            "schema": schema, "max_new_tokens": max_new_tokens}


def xgrammar_grammar(tok, schema: dict, width: int):
    """xgrammar's compiled grammar of ``schema`` for compact JSON, or ``None``
    when xgrammar is not installed."""
    try:
        import xgrammar as xgr
    except ImportError:
        return None
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=width)
    return xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(",", ":"))


def xgrammar_accepts(compiled, row: list[int]) -> bool:
    """xgrammar takes the properties in declaration order only; structgen
    takes any order. Rows that only structgen accepts cannot be replayed
    through xgrammar's processor (it asserts every token)."""
    import xgrammar as xgr

    m = xgr.GrammarMatcher(compiled)
    return all(m.is_terminated() or m.accept_token(t) for t in row)


def steps_needed(ids: torch.Tensor, prompt_len: int, finished: set[int]) -> int:
    """Calls ``generate`` would make for these rows: until every row has
    produced a finishing token."""
    gen = ids[:, prompt_len:]
    last = 0
    for row in gen.tolist():
        end = next((k for k, t in enumerate(row) if t in finished), len(row) - 1)
        last = max(last, end)
    return last + 1


def replay(make, ids: torch.Tensor, prompt_len: int, steps: int, width: int) -> list[float]:
    """Call a fresh processor as ``generate`` would for ``steps`` steps; the
    time of each call."""
    proc = make()
    scores = torch.randn(ids.shape[0], width)
    times = []
    for k in range(steps):
        s = scores.clone()
        t = time.perf_counter()
        proc(ids[:, : prompt_len + k], s)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="structgen")
    ap.add_argument("--tokens", type=Path, default=None, help="recorded ids to replay (made if missing)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"processor-cost-{_dt.date.today()}")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3, help="warm replays per batch size (median reported)")
    ap.add_argument("--engines", default="structgen,xgrammar")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, tok = default_model()
    width = model.get_output_embeddings().weight.shape[0]
    tokens = args.tokens or args.out / "tokens.json"
    if tokens.exists():
        data = json.loads(tokens.read_text())
    else:
        print(f"recording {max(BATCHES)} outputs...", file=sys.stderr)
        data = record(model, tok, DEFAULT_SCHEMA, 2 * max(BATCHES), args.max_new_tokens, seed=0)
        compiled = xgrammar_grammar(tok, DEFAULT_SCHEMA, width)
        if compiled is not None:
            keep = [k for k, row in enumerate(data["ids"]) if xgrammar_accepts(compiled, row[data["prompt_len"]:])]
            data["ids"] = [data["ids"][k] for k in keep]
            data["attention"] = [data["attention"][k] for k in keep]
        data["ids"], data["attention"] = data["ids"][: max(BATCHES)], data["attention"][: max(BATCHES)]
        tokens.parent.mkdir(parents=True, exist_ok=True)
        tokens.write_text(json.dumps(data))
    ids, plen, schema = torch.tensor(data["ids"]), data["prompt_len"], data["schema"]
    finished = {tok.eos_token_id, tok.pad_token_id}

    makers = {}
    engines = args.engines.split(",")
    if "structgen" in engines:
        makers["structgen"] = lambda: structgen.LogitsProcessor(schema, tok)
    if "xgrammar" in engines:
        compiled = xgrammar_grammar(tok, schema, width)
        if compiled is None:
            print("xgrammar is not installed: skipped", file=sys.stderr)
        else:
            from xgrammar.contrib.hf import LogitsProcessor as XGProcessor

            makers["xgrammar"] = lambda: XGProcessor(compiled)

    results: dict = {"label": args.label, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                     "structgen": str(Path(structgen.__file__).parent), "torch_threads": args.threads, "runs": {}}
    print(f"| processor | batch | steps | cold ms/call | warm ms/call (median) | warm µs/row |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, make in makers.items():
        for batch in BATCHES:
            rows = ids[:batch]
            steps = steps_needed(rows, plen, finished)
            try:
                cold = replay(make, rows, plen, steps, width)
                warm = [statistics.mean(replay(make, rows, plen, steps, width)) for _ in range(args.repeats)]
            except AssertionError:  # xgrammar's processor asserts every token it is given is allowed
                print(f"| {name} | {batch} | refused a token of the recorded outputs | | | |")
                continue
            entry = {"steps": steps, "cold_ms_per_call": statistics.mean(cold) * 1e3,
                     "warm_ms_per_call": statistics.median(warm) * 1e3}
            results["runs"][f"{name}/{batch}"] = entry
            print(f"| {name} | {batch} | {steps} | {entry['cold_ms_per_call']:.3f} | {entry['warm_ms_per_call']:.3f} "
                  f"| {entry['warm_ms_per_call'] * 1e3 / batch:.1f} |", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.label}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
