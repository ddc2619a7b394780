"""Mask computation speed of the core engine (issue 4), Llama-3 vocabulary.

For a JSON-like grammar (flexible whitespace, recursive values, one variant
with a bounded string length) and a set of sample documents, read each
document token by token and time the mask of every state visited:

- *cold*: the first mask of a state in a freshly compiled grammar, including
  the derivatives built on the way (what a new schema costs);
- *cold, DFA warm*: the mask cache emptied but the DFA transitions kept
  (the cost of the token walk alone);
- *cached*: the second request for the same state (a dictionary lookup).

States are grouped by where the document is: inside a string, inside a
number, or between values (structural). Two regexes whose full DFAs would
be huge (``(a|b)*a(a|b){25}``: 2^26 states; ``[a-z]{1,2000}``) are timed
the same way, compile included: only the states visited are built.

Each state's time is the median of ``--repeat`` runs (fresh grammars each
time): one machine hiccup does not make a p99, and what a process pays once
(loading the kernels, making a loop split) shows in no figure.

    .venv/bin/python benchmarks/mask_speed.py [--out benchmarks/results] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from structgen.frontends.regex import regex_to_expr  # noqa: E402
from structgen.grammar import ir  # noqa: E402
from structgen.index.token_index import TokenArrays  # noqa: E402
from structgen.matcher import CompiledGrammar  # noqa: E402
from structgen.vocab import Vocabulary  # noqa: E402
from structgen.warmup import warm_up  # noqa: E402
from tests.test_token_index import json_like_grammar  # noqa: E402
from tests.tokenizers import llama3  # noqa: E402

DOCS = [
    {"name": "Bob é 日本", "xs": [1, 2, {"a": [True]}], "k": -12},
    {"description": 'A text with "quotes" and \\ back\nslashes, Привет мир 🙂', "n": [[], {}, 123456789, None]},
    {"user": {"id": 90210, "email": "someone@example.com", "tags": ["a", "bb", "ccc"], "score": 1024}},
    {"items": [{"sku": "X-1", "qty": 3}, {"sku": "Y-22", "qty": 15}], "note": "deliver after 5pm, ring twice"},
]


def context_of(text: str) -> list[str]:
    """The lexical context before each character: string, number or structural."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            out.append("string")
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        else:
            out.append("number" if out and ch.isdigit() and text[len(out) - 1].isdigit() else "structural")
            if ch == '"':
                in_string = True
    return out


def measure(tokenizer, grammar_ir: ir.Grammar, vocab: Vocabulary) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {}
    for doc in DOCS:
        text = json.dumps(doc, ensure_ascii=False)
        ids = tokenizer.encode(text, add_special_tokens=False)
        contexts = context_of(text)
        grammar = CompiledGrammar(grammar_ir, vocab)  # fresh: every state is cold
        m = grammar.matcher()
        offset = 0
        visited = []
        for tok in ids:
            kind = contexts[min(len(text.encode()[:offset].decode(errors="ignore")), len(contexts) - 1)]
            state = m.state
            t0 = time.perf_counter()
            m.allowed_bitmask()
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            m.allowed_bitmask()
            cached = time.perf_counter() - t0
            bucket = samples.setdefault(kind, {"cold": [], "cold_dfa_warm": [], "cached": []})
            if state not in visited:
                bucket["cold"].append(cold)
                visited.append(state)
            bucket["cached"].append(cached)
            assert m.advance(tok)
            offset += len(vocab.token_bytes[tok])
        assert m.is_accepting()
        # Same states again with the mask cache dropped but the DFA kept.
        grammar.index._masks.clear()
        m = grammar.matcher()
        for tok in ids:
            kind = contexts[min(len(vocab.decode_bytes(ids[: m.steps]).decode(errors="ignore")), len(contexts) - 1)]
            if m.state not in grammar.index._masks:
                t0 = time.perf_counter()
                m.allowed_bitmask()
                samples[kind]["cold_dfa_warm"].append(time.perf_counter() - t0)
            m.advance(tok)
    return samples


_AB = random.Random(0)
HUGE = [  # (a|b) text at random, so that states do not repeat
    (r"(a|b)*a(a|b){25}", "".join(_AB.choice("ab") for _ in range(60)) + "a" + "".join(_AB.choice("ab") for _ in range(25))),
    (r"[a-z]{1,2000}", "hello" * 300),
]


def measure_huge(tokenizer, vocab: Vocabulary) -> dict[str, dict[str, list[float]]]:
    """Compile time and the cold mask of every state met reading a sample."""
    samples: dict[str, dict[str, list[float]]] = {}
    for pattern, text in HUGE:
        t0 = time.perf_counter()
        grammar = CompiledGrammar(ir.Grammar.from_expr(regex_to_expr(pattern)), vocab)
        compile_s = time.perf_counter() - t0
        m = grammar.matcher()
        cold = []
        for tok in tokenizer.encode(text, add_special_tokens=False):
            t0 = time.perf_counter()
            m.allowed_bitmask()
            cold.append(time.perf_counter() - t0)
            assert m.advance(tok)
        assert m.is_accepting()
        samples[pattern] = {"compile": [compile_s], "cold": cold}
    return samples


def median_per_state(runs):
    """Per context and measure, each state's median over the runs (every run
    reads the same documents, so its samples come in the same order)."""
    return {kind: {what: list(np.median([run[kind][what] for run in runs], axis=0)) for what in by} for kind, by in runs[0].items()}


def summarize(samples) -> list[dict]:
    rows = []
    for kind, by in sorted(samples.items()):
        for what, xs in by.items():
            if not xs:
                continue
            us = np.array(xs) * 1e6
            rows.append(
                {
                    "context": kind,
                    "measure": what,
                    "n": len(us),
                    "p50_us": round(float(np.percentile(us, 50)), 1),
                    "p99_us": round(float(np.percentile(us, 99)), 1),
                    "max_us": round(float(us.max()), 1),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--repeat", type=int, default=3, help="runs per state; the median is reported")
    args = parser.parse_args()
    tok = llama3()
    vocab = Vocabulary.from_tokenizer(tok)
    warm_up()  # load the compiled kernels, so the first grammar's masks do not pay for it
    t0 = time.perf_counter()
    TokenArrays.of(vocab)
    arrays_s = time.perf_counter() - t0
    lines = [
        f"# Mask speed, Llama-3 vocabulary ({len(vocab)} tokens)",
        "",
        f"Run {datetime.date.today()} on {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, one thread. `python benchmarks/mask_speed.py`; "
        f"each state's time is the median of {args.repeat} runs.",
        f"Vocabulary arrays and trie built once per vocabulary in {arrays_s * 1e3:.0f} ms.",
        "",
    ]
    results = {}
    for label, max_len in (("unbounded strings", None), ("strings with maxLength 300", 300)):
        runs = [measure(tok, json_like_grammar(max_len), vocab) for _ in range(args.repeat)]
        rows = summarize(median_per_state(runs))
        results[label] = rows
        lines += [f"## {label}", "", "| context | measure | states | p50 µs | p99 µs | max µs |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['context']} | {r['measure']} | {r['n']} | {r['p50_us']} | {r['p99_us']} | {r['max_us']} |" for r in rows]
        lines.append("")
    rows = summarize(median_per_state([measure_huge(tok, vocab) for _ in range(args.repeat)]))
    results["huge DFAs"] = rows
    lines += ["## regexes with huge DFAs", "", "| regex | measure | n | p50 µs | p99 µs | max µs |", "|---|---|---:|---:|---:|---:|"]
    bar = "\\|"  # a regex's | inside a table cell
    lines += [f"| `{r['context'].replace('|', bar)}` | {r['measure']} | {r['n']} | {r['p50_us']} | {r['p99_us']} | {r['max_us']} |" for r in rows]
    lines.append("")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"mask-speed-{datetime.date.today()}"
    (args.out / f"{stem}.md").write_text(text + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
