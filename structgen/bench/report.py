"""Reports of benchmark runs: Markdown tables, per-schema JSON/CSV, a PNG plot
and the machine the run was made on. Everything is rebuilt from
``results.jsonl``, so ``structgen bench report DIR`` redraws a finished (or
interrupted) run."""

from __future__ import annotations

import csv
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

from structgen.bench.stats import PERCENTILES, Dist, exact_percentile

TIMED = ("passing", "validation_error", "invalidation_error")
FAIL_ROWS = (
    ("passing", "passing"),
    ("compile error", ("compile_error",)),
    ("timeout", ("timeout",)),
    ("crash/oom", ("crash", "oom")),
    ("validation error", ("validation_error",)),
    ("invalidation error", ("invalidation_error",)),
)
PACKAGES = ("structgen-hf", "llguidance", "xgrammar", "outlines_core", "numpy", "transformers", "tokenizers", "torch", "interegular")


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    if os.environ.get("STRUCTGEN_COMMIT"):  # a run from an exported snapshot of the tree
        return os.environ["STRUCTGEN_COMMIT"]
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "structgen"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode:
            return "unknown"
        return head.stdout.strip() + (" (+ uncommitted changes under structgen/)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info(tokenizer: str = "", engines: Iterable[str] = ()) -> dict:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = int(fh.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = ""
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": mem,
        "load_average": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "structgen_commit": _git_commit(),
        "tokenizer": tokenizer,
        "engines": list(engines),
    }


def record_machine(out: Path, tokenizer: str, engines: Iterable[str], final: bool = False) -> None:
    """Append this session's machine description (start, then end) to
    ``out/machine.json`` (a list: a resumed run has one entry per session)."""
    path = Path(out) / "machine.json"
    runs = []
    if path.exists():
        try:
            runs = json.loads(path.read_text())
        except json.JSONDecodeError:
            runs = []
    info = machine_info(tokenizer, engines)
    if final and runs:
        runs[-1]["finished"] = info["date"]
        runs[-1]["load_average_end"] = info["load_average"]
    else:
        runs.append(info)
    path.write_text(json.dumps(runs, indent=1) + "\n")


def machine_markdown(out: Path) -> str:
    path = Path(out) / "machine.json"
    if not path.exists():
        return ""
    runs = json.loads(path.read_text())
    lines = []
    for r in runs:
        pk = ", ".join(f"{k} {v}" for k, v in r.get("packages", {}).items())
        lines.append(
            f"- {r.get('date')} → {r.get('finished', '?')}: {r.get('cpu')}, {r.get('cores')} cores, "
            f"{r.get('memory')} RAM, load {r.get('load_average')} → {r.get('load_average_end', '?')}; "
            f"{r.get('platform')}; Python {r.get('python')}; structgen commit {r.get('structgen_commit')}; "
            f"tokenizer {r.get('tokenizer')}; {pk}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- aggregation


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "–"


class EngineSummary:
    def __init__(self, name: str) -> None:
        self.name = name
        self.records: list[dict] = []
        self.status = Counter()
        self.tbm = Dist()
        self.advance = Dist()
        self.ttfm: list[float] = []

    def add(self, r: dict) -> None:
        self.records.append(r)
        self.status[r.get("status")] += 1
        if r.get("status") in TIMED:
            self.tbm.merge(Dist.from_json(r.get("tbm")))
            self.advance.merge(Dist.from_json(r.get("advance")))
            if r.get("ttfm_us") is not None:
                self.ttfm.append(float(r["ttfm_us"]))

    @property
    def tokens(self) -> int:
        return self.tbm.n + len(self.ttfm)


def by_engine(records: list[dict], engines: list[str]) -> dict[str, EngineSummary]:
    out = {e: EngineSummary(e) for e in engines}
    for r in records:
        if r.get("engine") in out:
            out[r["engine"]].add(r)
    return out


def main_table(summaries: dict[str, EngineSummary]) -> str:
    names = list(summaries)
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def row(label: str, values: list[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(values) + " |")

    row("TBM avg (µs)", [_fmt(s.tbm.avg) for s in summaries.values()])
    for p in PERCENTILES:
        row(f"TBM p{p:g} (µs)", [_fmt(s.tbm.percentile(p)) for s in summaries.values()])
    row("TBM max (µs)", [_fmt(s.tbm.max if s.tbm.n else None) for s in summaries.values()])
    row("TTFM avg (µs)", [_fmt(sum(s.ttfm) / len(s.ttfm) if s.ttfm else None) for s in summaries.values()])
    for p in PERCENTILES:
        row(f"TTFM p{p:g} (µs)", [_fmt(exact_percentile(s.ttfm, p)) for s in summaries.values()])
    row("TTFM max (µs)", [_fmt(max(s.ttfm) if s.ttfm else None) for s in summaries.values()])
    row("advance avg (µs)", [_fmt(s.advance.avg) for s in summaries.values()])
    row("advance p99 (µs)", [_fmt(s.advance.percentile(99)) for s in summaries.values()])
    row("tokens (masks)", [f"{s.tokens:,}" for s in summaries.values()])
    row("schemas", [str(len(s.records)) for s in summaries.values()])
    for label, keys in FAIL_ROWS:
        keys = (keys,) if isinstance(keys, str) else keys
        row(label, [str(sum(s.status[k] for k in keys)) for s in summaries.values()])
    row("invalid instances accepted", [str(sum((r.get("tests") or {}).get("invalid_accepted", 0) for r in s.records)) for s in summaries.values()])
    row("valid instances refused", [str(sum((r.get("tests") or {}).get("valid_rejected", 0) for r in s.records)) for s in summaries.values()])
    incons = [sum(r.get("inconsistent", 0) for r in s.records) for s in summaries.values()]
    if any(incons):
        row("mask/advance disagreements", [str(x) for x in incons])
    return "\n".join(rows)


def source_table(summaries: dict[str, EngineSummary]) -> str:
    names = list(summaries)
    per: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for e, s in summaries.items():
        for r in s.records:
            src = r.get("source") or "?"
            per[src][e][1] += 1
            per[src][e][0] += r.get("status") == "passing"
    rows = ["| source | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for src in sorted(per):
        rows.append(f"| {src} | " + " | ".join(_pct(*per[src][e]) for e in names) + " |")
    tot = {e: [sum(per[s][e][0] for s in per), sum(per[s][e][1] for s in per)] for e in names}
    rows.append("| **all** | " + " | ".join(_pct(*tot[e]) for e in names) + " |")
    return "\n".join(rows)


def common_table(summaries: dict[str, EngineSummary]) -> tuple[str, int]:
    """TTFM/TBM on the schemas every engine passes: the like-for-like comparison."""
    names = list(summaries)
    if len(names) < 2:
        return "", 0
    passing = [{r["key"] for r in s.records if r.get("status") == "passing"} for s in summaries.values()]
    common = set.intersection(*passing) if passing else set()
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    sub = {}
    for e, s in summaries.items():
        d, t = Dist(), []
        for r in s.records:
            if r["key"] in common:
                d.merge(Dist.from_json(r.get("tbm")))
                if r.get("ttfm_us") is not None:
                    t.append(float(r["ttfm_us"]))
        sub[e] = (d, t)
    rows.append("| TBM avg (µs) | " + " | ".join(_fmt(sub[e][0].avg) for e in names) + " |")
    for p in (50, 90, 99, 99.9):
        rows.append(f"| TBM p{p:g} (µs) | " + " | ".join(_fmt(sub[e][0].percentile(p)) for e in names) + " |")
    rows.append("| TBM max (µs) | " + " | ".join(_fmt(sub[e][0].max) for e in names) + " |")
    rows.append("| TTFM avg (µs) | " + " | ".join(_fmt(sum(sub[e][1]) / len(sub[e][1]) if sub[e][1] else None) for e in names) + " |")
    for p in (50, 90, 99):
        rows.append(f"| TTFM p{p:g} (µs) | " + " | ".join(_fmt(exact_percentile(sub[e][1], p)) for e in names) + " |")
    rows.append("| TTFM max (µs) | " + " | ".join(_fmt(max(sub[e][1]) if sub[e][1] else None) for e in names) + " |")
    rows.append("| tokens (masks) | " + " | ".join(f"{sub[e][0].n + len(sub[e][1]):,}" for e in names) + " |")
    return "\n".join(rows), len(common)


def head_to_head(summaries: dict[str, EngineSummary], ours: str = "structgen") -> str:
    """Per schema both pass: how often and by how much ``ours`` is faster."""
    if ours not in summaries or len(summaries) < 2:
        return ""
    mine = {r["key"]: r for r in summaries[ours].records if r.get("status") == "passing"}
    rows = [
        f"| {ours} vs | schemas both pass | TTFM faster | TTFM ratio p50 (theirs/ours) | TBM avg faster | TBM avg ratio p50 (theirs/ours) | TBM max ratio p50 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for e, s in summaries.items():
        if e == ours:
            continue
        ttfm_r, tbm_r, max_r = [], [], []
        for r in s.records:
            m = mine.get(r["key"])
            if m is None or r.get("status") != "passing":
                continue
            if m.get("ttfm_us") and r.get("ttfm_us"):
                ttfm_r.append(r["ttfm_us"] / m["ttfm_us"])
            a, b = Dist.from_json(m.get("tbm")), Dist.from_json(r.get("tbm"))
            if a.n and b.n and a.avg > 0:
                tbm_r.append(b.avg / a.avg)
                max_r.append(b.max / a.max if a.max else float("nan"))
        n = len(ttfm_r)
        if not n:
            rows.append(f"| {e} | 0 | – | – | – | – | – |")
            continue
        rows.append(
            f"| {e} | {n} | {sum(x > 1 for x in ttfm_r)}/{n} | {_ratio(exact_percentile(ttfm_r, 50))} | "
            f"{sum(x > 1 for x in tbm_r)}/{len(tbm_r)} | {_ratio(exact_percentile(tbm_r, 50))} | {_ratio(exact_percentile(max_r, 50))} |"
        )
    return "\n".join(rows)


def _ratio(x: float) -> str:
    if x is None or math.isnan(x):
        return "–"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


def error_group(msg: str) -> str:
    """A short reason for grouping compile errors: the keyword for
    structgen's 'keyword X ... not supported', else the message's start with
    quoted text and numbers blanked."""
    msg = msg or ""
    m = re.search(r"keyword '([^']+)'", msg)
    if m:
        head = msg.split(":", 1)[0]
        return f"{head}: keyword '{m.group(1)}'"
    first = msg.split("\n", 1)[0]
    first = re.sub(r"\(at [^)]*\)", "", first)
    first = re.sub(r"\bat (#|/)[^\s,;:]*", "at …", first)
    first = _QUOTED.sub("…", first)
    first = re.sub(r"\d+", "N", first)
    return first[:90].strip()


def failure_reasons(s: EngineSummary, top: int = 15) -> str:
    groups: dict[str, Counter] = {}
    for label, keys in (("compile_error", ("compile_error",)), ("crash/oom/timeout", ("crash", "oom", "timeout"))):
        c = Counter()
        for r in s.records:
            if r.get("status") in keys:
                c[(r.get("status") + ": " if label != "compile_error" else "") + error_group(r.get("error", ""))] += 1
        groups[label] = c
    lines = []
    for label, c in groups.items():
        if not c:
            continue
        lines.append(f"\n**{s.name}: {label}** ({sum(c.values())} schemas)\n")
        lines.append("| reason | schemas |\n|---|---:|")
        for reason, n in c.most_common(top):
            lines.append(f"| {reason.replace('|', '/')} | {n} |")
        if len(c) > top:
            lines.append(f"| ({len(c) - top} other reasons) | {sum(n for _, n in c.most_common()[top:])} |")
    fails = [r for r in s.records if r.get("status") in ("validation_error", "invalidation_error")]
    if fails:
        lines.append(f"\n**{s.name}: instances decided wrongly** ({len(fails)} schemas; first failure of each)\n")
        lines.append("| schema | status | instance | reason | at token | text before | token |\n|---|---|---:|---|---:|---|---|")
        for r in fails[:40]:
            f = (r.get("failures") or [{}])[0]
            before = (f.get("before") or "")[-50:].replace("|", "\\|").replace("\n", " ")
            tok = (f.get("token") or "").replace("|", "\\|")
            lines.append(
                f"| {r['key']} | {r['status']} | {f.get('test', '')} | {f.get('reason', '')} | "
                f"{f.get('token_pos', '')}/{f.get('tokens', '')} | `{before}` | `{tok}` |"
            )
        if len(fails) > 40:
            lines.append(f"| … {len(fails) - 40} more in results.jsonl | | | | | | |")
    return "\n".join(lines)


def compare_csv(records: list[dict], csv_path: str, engine: str = "llguidance", column: str = "strict") -> str:
    """Agreement of ``engine``'s outcomes with a baseline CSV (file, strict, lenient)."""
    try:
        with open(csv_path, encoding="utf-8") as fh:
            base = {row["file"]: row for row in csv.DictReader(fh)}
    except (OSError, KeyError):
        return ""
    lines = []
    for eng, col in ((engine, column), (engine + "-lenient", "lenient")):
        pairs = [(r["key"], r.get("status"), base[r["key"]].get(col)) for r in records if r.get("engine") == eng and r["key"] in base]
        if not pairs:
            continue
        same = sum(a == b for _, a, b in pairs)
        diff = Counter(f"{b} → {a}" for _, a, b in pairs if a != b)
        lines.append(
            f"- {eng} here vs the baseline's `{col}` column ({csv_path}): same outcome on {same}/{len(pairs)} schemas"
            + ("; differences (baseline → here): " + ", ".join(f"{k}: {v}" for k, v in diff.most_common()) if diff else "")
        )
    for eng in sorted({r.get("engine") for r in records if str(r.get("engine", "")).startswith("structgen")}):
        pairs = [(r.get("status"), base[r["key"]].get(column)) for r in records if r.get("engine") == eng and r["key"] in base]
        if not pairs:
            continue
        mine = sum(a == "passing" for a, _ in pairs)
        theirs = sum(b == "passing" for _, b in pairs)
        only_mine = Counter(b for a, b in pairs if a == "passing" and b != "passing")
        only_theirs = Counter(a for a, b in pairs if a != "passing" and b == "passing")
        lines.append(
            f"- {eng} here vs the baseline's llguidance `{column}` outcomes on the same {len(pairs)} schemas: "
            f"{eng} passes {mine}, llguidance passed {theirs}; {sum(only_mine.values())} pass only with {eng} "
            f"(llguidance: {', '.join(f'{k} {v}' for k, v in only_mine.most_common()) or '–'}), "
            f"{sum(only_theirs.values())} only with llguidance ({eng}: {', '.join(f'{k} {v}' for k, v in only_theirs.most_common()) or '–'})"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- files


def write_per_schema(out: Path, records: list[dict], engines: list[str]) -> None:
    per: dict[str, dict] = defaultdict(dict)
    for r in records:
        d = Dist.from_json(r.get("tbm"))
        per[r["key"]]["source"] = r.get("source")
        per[r["key"]][r["engine"]] = {
            "status": r.get("status"),
            "ttfm_us": None if r.get("ttfm_us") is None else round(r["ttfm_us"], 1),
            "tbm_avg_us": None if not d.n else round(d.avg, 2),
            "tbm_max_us": None if not d.n else round(d.max, 1),
            "masks": d.n + (r.get("ttfm_us") is not None),
            **({"error": r["error"]} if r.get("error") else {}),
        }
    (out / "results.json").write_text(json.dumps(dict(sorted(per.items())), indent=1, ensure_ascii=False) + "\n")
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "source", *engines])
        for k in sorted(per):
            w.writerow([k, per[k].get("source"), *[(per[k].get(e) or {}).get("status", "") for e in engines]])


def plot_distributions(out: Path, summaries: dict[str, EngineSummary], title: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'structgen[bench]')", file=sys.stderr)
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, s in summaries.items():
        if s.tbm.n:
            xs, ys = s.tbm.cdf()
            axes[0].step(xs, ys, where="post", label=f"{name} ({s.tbm.n:,} masks)")
        if s.ttfm:
            xs = sorted(s.ttfm)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            axes[1].step(xs, ys, where="post", label=f"{name} ({len(xs)} schemas)")
    for ax, what in zip(axes, ("TBM: time between masks", "TTFM: compile + first mask")):
        ax.set_xscale("log")
        ax.set_xlabel("µs (log scale)")
        ax.set_ylabel("fraction ≤ x")
        ax.set_title(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = out / "tbm_ttfm.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_masks_report(out: Path, records: list[dict], config: dict, *, compare: str | None = None, plot: bool = True) -> Path:
    out = Path(out)
    plot_png = plot
    engines = [e for e in config.get("engines", []) if any(r.get("engine") == e for r in records)]
    summaries = by_engine(records, engines)
    n_files = len({r["key"] for r in records})
    sample = config.get("sample")
    scope = (
        f"a stratified sample of {n_files} of {config.get('files_found')} schemas (seed {config.get('seed')})"
        if sample
        else f"{n_files} schemas"
    )
    parts = [
        "# MaskBench run\n",
        f"{scope} from {', '.join(config.get('paths', []))}; tokenizer `{config.get('tokenizer')}`; "
        f"{config.get('timeout_s')} s and {config.get('memory_mb')} MB per schema and engine; one worker process, "
        "one thread. Method: benchmarks/README.md \"How masks measures\" (json.dumps instances, no BOS, flexible whitespace; "
        "TTFM = compile + first mask; TBM = every later mask, the final EOS mask included; times in µs). "
        "Engines: " + ", ".join(f"{e} {_engine_version(e)}" for e in engines) + ".\n",
    ]
    notes = config.get("notes") or []
    if isinstance(notes, str):
        notes = [notes]
    if notes:
        parts += ["Notes:\n", "\n".join(f"- {n}" for n in notes) + "\n"]
    parts += [
        main_table(summaries),
        "\n### Passing rate per source\n",
        source_table(summaries),
    ]
    ct, n_common = common_table(summaries)
    if ct:
        parts += [f"\n### On the {n_common} schemas every engine passes\n", ct]
    h2h = head_to_head(summaries)
    if h2h:
        parts += ["\n### structgen against each peer, schema by schema (both passing)\n", h2h]
    if compare:
        c = compare_csv(records, compare)
        if c:
            parts += ["\n### Against the baseline file\n", c]
    parts.append("\n### Failure reasons\n")
    for s in summaries.values():
        parts.append(failure_reasons(s))
    if plot_png and plot_distributions(out, summaries, f"MaskBench, {scope}, tokenizer {config.get('tokenizer')}") is not None:
        parts.append("\n![TBM and TTFM distributions](tbm_ttfm.png)\n")
    parts += ["\n### Machine\n", machine_markdown(out)]
    parts.append(
        "\nFiles: `results.jsonl` (one line per schema and engine: outcome, error, TTFM, TBM histogram, first "
        "failures), `results.json` / `results.csv` (outcome per schema), `config.json`, `machine.json`, `tbm_ttfm.png`.\n"
    )
    text = "\n".join(parts) + "\n"
    path = out / "summary.md"
    path.write_text(text, encoding="utf-8")
    write_per_schema(out, records, engines)
    return path


def _engine_version(name: str) -> str:
    from structgen.bench.engines import engine_version

    return engine_version(name)
