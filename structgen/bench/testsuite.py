"""The official JSON Schema Test Suite through the MaskBench walk.

Each test case of a suite file (``[{"description", "schema", "tests": [{"data",
"valid"}]}]``) becomes one task: compile the schema, then every test must be
decided right (valid data accepted token by token to EOS, invalid data refused
somewhere). The report gives, per file (= keyword) and engine, the cases that
compile and pass and the tests decided right; a schema an engine refuses
counts all its tests as wrong for that engine. Invalid data accepted is a
soundness failure and is listed apart.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

from structgen.bench.maskbench import check_out, resolve_engines, run_tasks
from structgen.bench.report import _pct, machine_markdown, record_machine


def suite_tasks(path: str | os.PathLike, engines: list[str], *, optional: bool = False) -> list[dict]:
    root = Path(path)
    files = [root] if root.is_file() else sorted(root.glob("*.json"))
    if optional and root.is_dir():
        files += sorted((root / "optional").rglob("*.json"))
    tasks = []
    for f in files:
        rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
        try:
            cases = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            print(f"skipping {f}: {e}", file=sys.stderr)
            continue
        for i, case in enumerate(cases):
            doc = {"schema": case["schema"], "tests": case.get("tests", [])}
            for e in engines:
                tasks.append(
                    {
                        "key": f"{rel}#{i}",
                        "engine": e,
                        "doc": doc,
                        "meta": {"file": rel, "case": case.get("description", ""), "n_tests": len(doc["tests"])},
                    }
                )
    return tasks


def _tests_ok(r: dict) -> tuple[int, int]:
    total = int(r.get("n_tests", 0))
    if r.get("status") not in ("passing", "validation_error", "invalidation_error"):
        return 0, total
    t = r.get("tests") or {}
    ok = t.get("valid", 0) - t.get("valid_rejected", 0) + t.get("invalid", 0) - t.get("invalid_accepted", 0)
    return ok, total


def write_report(out: Path, records: list[dict], engines: list[str], path: str, tokenizer: str) -> Path:
    per: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    for r in records:
        if r.get("engine") not in engines:
            continue
        c = per[r["file"]][r["engine"]]
        ok, total = _tests_ok(r)
        c[0] += r.get("status") == "passing"
        c[1] += 1
        c[2] += ok
        c[3] += total
        c[4] += (r.get("tests") or {}).get("invalid_accepted", 0)
    head = "| file | " + " | ".join(f"{e}: cases passing | {e}: tests right" for e in engines) + " |"
    rows = [head, "|---|" + "---:|---:|" * len(engines)]
    tot = {e: [0, 0, 0, 0, 0] for e in engines}
    for f in sorted(per):
        cells = []
        for e in engines:
            c = per[f][e]
            cells += [_pct(c[0], c[1]), _pct(c[2], c[3])]
            tot[e] = [a + b for a, b in zip(tot[e], c)]
        rows.append(f"| {f} | " + " | ".join(cells) + " |")
    rows.append("| **all** | " + " | ".join(f"{_pct(t[0], t[1])} | {_pct(t[2], t[3])}" for t in tot.values()) + " |")
    status = {e: defaultdict(int) for e in engines}
    for r in records:
        if r.get("engine") in status:
            status[r["engine"]][r.get("status")] += 1
    srows = ["| outcome | " + " | ".join(engines) + " |", "|---|" + "---:|" * len(engines)]
    for s in ("passing", "compile_error", "timeout", "crash", "oom", "validation_error", "invalidation_error"):
        srows.append(f"| {s} | " + " | ".join(str(status[e][s]) for e in engines) + " |")
    srows.append("| invalid instances accepted | " + " | ".join(str(tot[e][4]) for e in engines) + " |")
    unsound = []
    for r in records:
        if r.get("engine") in engines and (r.get("tests") or {}).get("invalid_accepted"):
            f = next((x for x in r.get("failures", []) if not x.get("valid")), {})
            unsound.append(f"- {r['engine']}: {r['key']} ({r.get('case', '')}): \"{f.get('description', '')}\"")
    crashes = [
        f"- {r['engine']}: {r['key']} ({r.get('case', '')}): {r.get('status')}: {r.get('error', '')}"
        for r in records
        if r.get("engine") in engines and r.get("status") in ("crash", "oom", "timeout")
    ]
    from structgen.bench.engines import engine_version

    text = "\n".join(
        [
            "# JSON Schema Test Suite\n",
            f"{path}; tokenizer `{tokenizer}`; engines " + ", ".join(f"{e} {engine_version(e)}" for e in engines) + ". "
            "A case passes when the engine compiles its schema and decides every test right (valid data "
            "accepted to EOS token by token, invalid data refused); a refused schema counts all its tests wrong.\n",
            "\n".join(srows),
            "\n### Per file (keyword)\n",
            "\n".join(rows),
            "\n### Invalid data accepted (soundness)\n",
            "\n".join(unsound) or "none",
            "\n### Crashes and timeouts\n",
            "\n".join(crashes) or "none",
            "\n### Machine\n",
            machine_markdown(out),
        ]
    )
    p = out / "summary.md"
    p.write_text(text + "\n", encoding="utf-8")
    return p


def run_testsuite(
    path: str,
    *,
    engines: str = "structgen",
    tokenizer: str = "llama3",
    timeout: float = 30.0,
    out: str | os.PathLike = "benchmarks/results/testsuite",
    resume: bool = False,
    memory_mb: int | None = 8192,
    optional: bool = False,
    progress: bool = True,
) -> Path:
    out = Path(out)
    names = resolve_engines(engines, warn=lambda m: print(m, file=sys.stderr))
    tasks = suite_tasks(path, names, optional=optional)
    check_out(out, resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps({"command": "testsuite", "path": str(path), "engines": names, "tokenizer": tokenizer, "timeout_s": timeout, "optional": optional}, indent=1)
        + "\n"
    )
    record_machine(out, tokenizer, names)
    records = run_tasks(tasks, out=out, tokenizer=tokenizer, timeout=timeout, memory_mb=memory_mb, resume=resume, progress=progress, desc="bench testsuite")
    record_machine(out, tokenizer, names, final=True)
    keys = {(t["key"], t["engine"]) for t in tasks}
    records = [r for r in records if (r.get("key"), r.get("engine")) in keys]
    return write_report(out, records, names, str(path), tokenizer)
