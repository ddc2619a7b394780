"""Forward passes that jump-forward saves in ``structgen.generate``.

For each schema (the closed MaskBench schemas of ``generate_overhead.py``) and
prompt variation, greedy generation with the default model, once with
jump-forward and once without; reported: forward passes, tokens generated,
tokens forced, and the share of passes saved. Only public API is used, so
the same script measures an older checkout (``PYTHONPATH`` pointing at it)
with the same prompts:

    .venv/bin/python benchmarks/jump_forward.py --label after
    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/jump_forward.py --label before

Writes ``<out>/jump-forward-<label>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another checkout's structgen wins

import structgen  # noqa: E402

MASKBENCH = Path(os.environ.get("MASKBENCH_DIR", ROOT.parent / "shared" / "data" / "maskbench-dev"))
SCHEMAS = ["BFCL_simple_101.json", "Snowplow---sp_107_Normalized.json", "Github_easy---o10010.json",
           "Github_easy---o21455.json"]
ASKS = ["", " Use realistic values.", " Keep every string short."]


def prompt_for(schema: dict, ask: str) -> str:
    text = json.dumps(schema, ensure_ascii=False)[:1200]
    return f"Write one JSON object that follows this JSON Schema. Answer with the JSON only.\nSchema: {text}{ask}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="structgen")
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--canonical", choices=("on", "off"), default="on")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"jump-forward-{_dt.date.today()}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    print("| schema | prompt | passes (no jump) | passes (jump) | saved | tokens | forced | finish |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in SCHEMAS:
        schema = json.loads((MASKBENCH / name).read_text())["schema"]
        for k, ask in enumerate(ASKS):
            runs = {}
            for jump in (False, True):
                r = structgen.generate(schema, prompt_for(schema, ask), max_new_tokens=args.max_new_tokens,
                                       jump_forward=jump, canonical=args.canonical == "on", return_details=True)
                runs[jump] = r
            a, b = runs[False].stats, runs[True].stats
            row = {"schema": name, "prompt": k, "passes_no_jump": a.forward_passes, "passes_jump": b.forward_passes,
                   "tokens": b.generated_tokens, "forced": b.forced_tokens, "finish": runs[True].finish_reason,
                   "text": runs[True].text[:300]}
            rows.append(row)
            saved = 1 - b.forward_passes / max(1, a.forward_passes)
            print(f"| {name} | {k} | {a.forward_passes} | {b.forward_passes} | {saved:.0%} | {b.generated_tokens} "
                  f"| {b.forced_tokens} | {runs[True].finish_reason} |", flush=True)
    total_a = sum(r["passes_no_jump"] for r in rows)
    total_b = sum(r["passes_jump"] for r in rows)
    print(f"\nall: {total_a} -> {total_b} passes ({1 - total_b / total_a:.0%} saved), "
          f"{sum(r['forced'] for r in rows)} of {sum(r['tokens'] for r in rows)} tokens forced")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"jump-forward-{args.label}.json").write_text(json.dumps(
        {"label": args.label, "structgen": str(Path(structgen.__file__).parent), "canonical": args.canonical,
         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
