"""The MaskBench method (benchmarks/README.md, "How masks measures"), run in a worker process.

For each schema file (MaskBench format: ``{"schema": ..., "tests": [{"data":
..., "valid": bool}, ...]}``) and each engine: compile, then for each test
instance tokenize ``json.dumps(data, indent=None, ensure_ascii=False)`` (no
BOS) and, token by token, compute the mask, check the token is allowed and
advance; at the end compute one more mask and require EOS to be allowed.

* TTFM (time to first mask) = compile + the first mask of the first instance.
* TBM (time between masks) = every later mask computation, the end-of-input
  mask included. ``advance`` is timed separately (it is not in TBM).
* A valid instance must be accepted to the end; an invalid one must be
  refused at some token or end in a state where EOS is not allowed.

Outcome per (schema, engine), in this order: ``compile_error`` (the engine
refused the schema), ``timeout``, ``oom``, ``crash`` (the worker died, or an
unexpected exception; for structgen any exception that is not a
``StructgenError`` is a crash, i.e. a bug), ``validation_error`` (a valid
instance refused), ``invalidation_error`` (an invalid instance accepted),
``passing``.

One worker process at a time (timings are single-threaded on a shared
machine), reused across schemas because converting a vocabulary takes
seconds, killed and restarted after a timeout or a crash. Between schemas
the worker collects garbage and freezes what survives (``gc.freeze``), so no
engine's timings include the garbage collector walking the process's
long-lived heap. The memory limit is
``RLIMIT_AS`` in the worker. Results are appended per (schema, engine) as JSON
lines, so an interrupted run continues with ``--resume``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable

STATUSES = (
    "passing",
    "compile_error",
    "timeout",
    "crash",
    "oom",
    "validation_error",
    "invalidation_error",
)
RESULTS = "results.jsonl"
# Single-threaded engines: timings must not borrow the other core.
THREAD_ENV = {
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


# --------------------------------------------------------------------------- dataset


def source_of(name: str) -> str:
    """MaskBench source of a file name: the part before ``---``
    (``Github_easy---o1008.json``) or, for names without it, before the
    trailing ``_N.json`` with BFCL's sub-sets folded into ``BFCL``
    (``BFCL_java_16.json``, ``JME_0.json``)."""
    stem = Path(name).name
    if "---" in stem:
        return stem.split("---", 1)[0]
    base = re.sub(r"(_\d+)?\.json$", "", stem)
    if base.startswith("BFCL"):
        return "BFCL"
    return base


def discover(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Schema files under the given files/directories, sorted by name."""
    found: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                found.setdefault(f.name, f)
        elif p.is_file():
            found.setdefault(p.name, p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return [found[k] for k in sorted(found)]


def stratified_sample(files: list[Path], n: int, seed: int) -> list[Path]:
    """``n`` files drawn at random per source, each source getting its share
    of ``n`` in proportion to its size (largest remainders; every source at
    least one when ``n`` allows). Deterministic for a given ``seed``."""
    if n >= len(files):
        return list(files)
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in files:
        groups[source_of(f.name)].append(f)
    total = len(files)
    quota = {s: n * len(g) / total for s, g in groups.items()}
    take = {s: int(q) for s, q in quota.items()}
    if n >= len(groups):
        for s in groups:
            take[s] = max(take[s], 1)
    left = n - sum(take.values())
    order = sorted(groups, key=lambda s: (-(quota[s] - int(quota[s])), s))
    i = 0
    while left > 0:
        s = order[i % len(order)]
        if take[s] < len(groups[s]):
            take[s] += 1
            left -= 1
        i += 1
    while left < 0:  # the "at least one" rule overshot: trim the largest
        s = max(take, key=lambda k: take[k])
        take[s] -= 1
        left += 1
    rng = random.Random(seed)
    out: list[Path] = []
    for s in sorted(groups):
        out.extend(rng.sample(sorted(groups[s], key=lambda f: f.name), take[s]))
    return sorted(out, key=lambda f: f.name)


# --------------------------------------------------------------------------- measurement (worker side)


class _Timeout(Exception):
    pass


def _shorten(text: str, n: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def measure(
    engine: Any,
    doc: dict,
    tokenize: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    deadline: float,
) -> dict:
    """Run the MaskBench walk of one schema document on one engine."""
    from structgen.bench.engines import CompileError
    from structgen.bench.stats import Dist

    clock = time.perf_counter_ns
    rec: dict[str, Any] = {}
    tests = doc.get("tests") or []
    token_lists: list[list[int] | None] = []
    for t in tests:
        try:
            token_lists.append(tokenize(json.dumps(t["data"], indent=None, ensure_ascii=False)))
        except Exception:
            token_lists.append(None)

    t0 = clock()
    try:
        compiled = engine.compile(doc["schema"])
    except CompileError as e:
        rec.update(status="compile_error", error=_shorten(str(e)), compile_us=(clock() - t0) / 1000)
        return rec
    t1 = clock()
    rec["compile_us"] = (t1 - t0) / 1000
    tbm, adv = Dist(), Dist()
    ttfm = None
    counts = {"valid": 0, "invalid": 0, "valid_rejected": 0, "invalid_accepted": 0, "untokenizable": 0}
    inconsistent = 0
    failures: list[dict] = []

    if not tests:
        s = compiled.session()
        a = clock()
        s.mask()
        ttfm = (t1 - t0 + clock() - a) / 1000

    try:
        for ti, (test, ids) in enumerate(zip(tests, token_lists)):
            valid = bool(test.get("valid", True))
            if ids is None:
                counts["untokenizable"] += 1
                continue
            counts["valid" if valid else "invalid"] += 1
            s = compiled.session()
            accepted = True
            reason = None
            pos = len(ids)
            for k, tok in enumerate(ids):
                a = clock()
                s.mask()
                b = clock()
                if ttfm is None:
                    ttfm = (t1 - t0 + b - a) / 1000
                else:
                    tbm.add_ns(b - a)
                if not s.allowed(tok):
                    accepted, pos = False, k
                    reason = "token not in mask"
                    if s.advance(tok):
                        inconsistent += 1
                        reason = "token not in mask, but advance() took it"
                    break
                a = clock()
                ok = s.advance(tok)
                adv.add_ns(clock() - a)
                if not ok:
                    accepted, pos = False, k
                    inconsistent += 1
                    reason = "token in mask, but advance() refused it"
                    break
                if time.perf_counter() > deadline:
                    raise _Timeout
            if accepted:
                a = clock()
                s.mask()
                b = clock()
                if ttfm is None:
                    ttfm = (t1 - t0 + b - a) / 1000
                else:
                    tbm.add_ns(b - a)
                if not s.eos_allowed():
                    accepted, reason = False, "EOS not allowed at the end"
            if valid and not accepted:
                counts["valid_rejected"] += 1
            elif not valid and accepted:
                counts["invalid_accepted"] += 1
                reason = "invalid instance accepted"
            else:
                reason = None
            if reason is not None and len(failures) < 3:
                failures.append(
                    {
                        "test": ti,
                        "valid": valid,
                        "description": _shorten(test.get("description", ""), 120),
                        "reason": reason,
                        "token_pos": pos,
                        "tokens": len(ids),
                        "before": _shorten(decode(ids[:pos])[-80:], 200) if pos else "",
                        "token": decode(ids[pos : pos + 1]) if pos < len(ids) else "<EOS>",
                    }
                )
            if time.perf_counter() > deadline:
                raise _Timeout
    except _Timeout:
        rec["status"] = "timeout"
        rec["error"] = "soft time limit reached while walking the instances"
    if "status" not in rec:
        if counts["valid_rejected"]:
            rec["status"] = "validation_error"
        elif counts["invalid_accepted"]:
            rec["status"] = "invalidation_error"
        else:
            rec["status"] = "passing"
    rec.update(
        ttfm_us=ttfm,
        tbm=tbm.to_json(),
        advance=adv.to_json(),
        tests=counts,
        inconsistent=inconsistent,
    )
    if failures:
        rec["failures"] = failures
    info = getattr(compiled, "info", None)
    if info:
        rec["info"] = info
    return rec


def _limit_memory(mb: int | None) -> None:
    if not mb:
        return
    try:
        import resource

        limit = int(mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform
        pass


def worker_main(conn: Any, cfg: dict) -> None:
    """Worker loop: receive tasks, send ``("started", info)`` then
    ``("result", record)``; ``None`` ends it."""
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)
    if cfg.get("log"):
        # engines print warnings from native code straight to fd 2; keep
        # them out of the progress bar
        try:
            fd = os.open(cfg["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
        except OSError:
            pass
    _limit_memory(cfg.get("memory_mb"))
    from structgen.bench.engines import make_engine
    from structgen.bench.tokenizers import load_tokenizer

    tokenizer = None
    engines: dict[str, Any] = {}
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        info: dict[str, Any] = {}
        try:
            a = time.perf_counter()
            if tokenizer is None:
                tokenizer = load_tokenizer(cfg["tokenizer"])
                try:
                    import torch

                    torch.set_num_threads(1)
                except Exception:
                    pass
            name = task["engine"]
            if name not in engines:
                engines[name] = make_engine(name, tokenizer)
                info["setup_s"] = round(time.perf_counter() - a, 3)
            engine = engines[name]
            doc = task.get("doc")
            if doc is None:
                with open(task["path"], encoding="utf-8") as fh:
                    doc = json.load(fh)
        except Exception as e:
            conn.send(("setup_error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
            return
        tok = tokenizer

        def tokenize(text: str) -> list[int]:
            return tok.encode(text, add_special_tokens=False)

        def decode(ids: list[int]) -> str:
            return tok.decode(ids)

        conn.send(("started", info))
        start = time.perf_counter()
        fatal = False
        try:
            rec = measure(engine, doc, tokenize, decode, start + float(task["timeout"]))
        except MemoryError:
            rec = {"status": "oom", "error": "MemoryError"}
            fatal = True
        except RecursionError as e:
            rec = {"status": "crash", "error": _shorten(f"RecursionError: {e}"), "traceback": traceback.format_exc()[-3000:]}
        except Exception as e:
            rec = {"status": "crash", "error": _shorten(f"{type(e).__name__}: {e}"), "traceback": traceback.format_exc()[-3000:]}
        rec["wall_s"] = round(time.perf_counter() - start, 4)
        rec.update(info)
        try:
            engine.after_schema()
        except Exception:
            pass
        doc = None
        # What survives the schema (the setup's heap: torch, numba, the
        # tokenizer; the engines' caches) is collected and frozen, so that the
        # collections the next schema triggers walk its own objects only: a
        # full collection of the rest takes 100-150 ms here and would land in
        # whichever large schema happened to trigger it.
        gc.collect()
        gc.freeze()
        try:
            conn.send(("result", rec))
        except Exception:
            return
        if fatal:
            return


# --------------------------------------------------------------------------- worker (parent side)


class WorkerDied(Exception):
    pass


class Worker:
    """One worker process; restarted when it dies or is killed."""

    def __init__(self, tokenizer: str, memory_mb: int | None, setup_timeout: float = 900.0, log: str | None = None) -> None:
        self.cfg = {"tokenizer": tokenizer, "memory_mb": memory_mb, "log": log}
        self.setup_timeout = setup_timeout
        self.proc = None
        self.conn = None
        self.starts = 0

    def _start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(child, self.cfg), daemon=True, name="structgen-bench-worker")
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        self.starts += 1

    def _recv(self, timeout: float):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                if self.conn.poll(min(left, 0.5)):
                    return self.conn.recv()
            except (EOFError, OSError, ConnectionResetError):
                raise WorkerDied from None
            if not self.proc.is_alive():
                try:  # it may have sent something just before exiting
                    if self.conn.poll(0):
                        return self.conn.recv()
                except (EOFError, OSError):
                    pass
                raise WorkerDied

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(10)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(10)
            except Exception:
                pass
        self.kill()

    def _died(self, when: str) -> dict:
        code = self.proc.exitcode if self.proc is not None else None
        self.kill()
        if code == -9:
            return {"status": "oom", "error": f"worker killed by SIGKILL {when} (out of memory?)", "exitcode": code}
        return {"status": "crash", "error": f"worker died {when} (exit code {code})", "exitcode": code}

    def run(self, task: dict, timeout: float, grace: float = 2.0) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self.kill()
            self._start()
        try:
            self.conn.send(dict(task, timeout=timeout))
            msg = self._recv(self.setup_timeout)
        except (WorkerDied, OSError, BrokenPipeError):
            return self._died("while loading")
        if msg is None:
            self.kill()
            raise RuntimeError(f"the worker did not get ready within {self.setup_timeout:.0f} s (loading the tokenizer/engine)")
        if msg[0] == "setup_error":
            self.kill()
            raise RuntimeError(f"engine {task['engine']!r} could not be set up:\n{msg[1]}")
        info = msg[1]
        try:
            msg = self._recv(timeout + grace)
        except WorkerDied:
            rec = self._died("during the schema")
            rec.update(info)
            return rec
        if msg is None:
            self.kill()
            rec = {"status": "timeout", "error": f"killed after {timeout + grace:.0f} s"}
            rec.update(info)
            return rec
        rec = msg[1]
        if rec.get("status") == "oom":
            self.kill()
        return rec


# --------------------------------------------------------------------------- runner


def load_records(path: Path) -> list[dict]:
    out = []
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut by a kill
                        continue
    return out


def check_out(out: Path, resume: bool) -> None:
    """Refuse to mix a new run into a directory that has results, unless resuming."""
    results = Path(out) / RESULTS
    if not resume and results.exists() and results.stat().st_size:
        raise SystemExit(f"{results} already has results: pass --resume to continue that run, or choose another --out")


def run_tasks(
    tasks: list[dict],
    *,
    out: Path,
    tokenizer: str,
    timeout: float,
    memory_mb: int | None,
    resume: bool,
    progress: bool = True,
    desc: str = "bench",
) -> list[dict]:
    """Run ``tasks`` (dicts with ``key``, ``engine`` and ``path`` or ``doc``)
    one at a time in a worker, appending one JSON line per task to
    ``out/results.jsonl``. Returns all records (earlier ones included)."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS
    check_out(out, resume)
    old = load_records(results)
    done = {(r.get("key"), r.get("engine")) for r in old}
    todo = [t for t in tasks if (t["key"], t["engine"]) not in done]
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)
    worker = Worker(tokenizer, memory_mb, log=str(out / "worker.log"))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, unit="task", file=sys.stderr, dynamic_ncols=True)
    passing: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    for r in old:
        seen[r.get("engine")] += 1
        passing[r.get("engine")] += r.get("status") == "passing"
    new: list[dict] = []
    try:
        with open(results, "a", encoding="utf-8") as fh:
            for t in todo:
                rec = worker.run({k: v for k, v in t.items() if k not in ("meta",)}, timeout)
                rec = {"key": t["key"], "engine": t["engine"], **(t.get("meta") or {}), **rec}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                fh.flush()
                new.append(rec)
                seen[t["engine"]] += 1
                passing[t["engine"]] += rec["status"] == "passing"
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(
                        " ".join(f"{e}:{passing[e]}/{seen[e]}" for e in sorted(seen)) + f" | {t['key'][:30]}",
                        refresh=False,
                    )
    finally:
        worker.close()
        if bar is not None:
            bar.close()
    return old + new


def masks_tasks(files: list[Path], engines: list[str]) -> list[dict]:
    return [
        {"key": f.name, "engine": e, "path": str(f), "meta": {"file": f.name, "source": source_of(f.name)}}
        for f in files
        for e in engines
    ]


def resolve_engines(spec: str, *, warn: Callable[[str], None] = print) -> list[str]:
    from structgen.bench.engines import ENGINES, VARIANTS, engine_available

    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["all"]:
        names = list(ENGINES)
    out = []
    for n in names:
        if n not in ENGINES + VARIANTS:
            raise SystemExit(f"unknown engine {n!r}; known: {', '.join(ENGINES + VARIANTS)}")
        if not engine_available(n):
            warn(f"engine {n} is not installed; skipping it (pip install 'structgen[bench]')")
            continue
        out.append(n)
    if not out:
        raise SystemExit("no engine to run")
    return out


def run_masks(
    paths: list[str],
    *,
    engines: str = "structgen",
    tokenizer: str = "llama3",
    sample: int | None = None,
    seed: int = 0,
    timeout: float = 30.0,
    out: str | os.PathLike = "benchmarks/results/maskbench",
    resume: bool = False,
    memory_mb: int | None = 8192,
    progress: bool = True,
    compare: str | None = None,
    plot: bool = True,
    notes: list[str] | None = None,
) -> Path:
    """``structgen bench masks``: run, then write the report into ``out``."""
    from structgen.bench import report

    out = Path(out)
    names = resolve_engines(engines, warn=lambda m: print(m, file=sys.stderr))
    files = discover(paths)
    if not files:
        raise SystemExit("no schema files found")
    n_all = len(files)
    if sample:
        files = stratified_sample(files, sample, seed)
    check_out(out, resume)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "command": "masks",
        "paths": [str(p) for p in paths],
        "engines": names,
        "tokenizer": tokenizer,
        "sample": sample,
        "seed": seed,
        "timeout_s": timeout,
        "memory_mb": memory_mb,
        "files_found": n_all,
        "files": [f.name for f in files],
    }
    cfg_path = out / "config.json"
    if resume and cfg_path.exists():
        prev = json.loads(cfg_path.read_text())
        if prev.get("files") != config["files"]:
            print("warning: --resume with a different schema selection than the original run", file=sys.stderr)
        config["engines"] = list(dict.fromkeys(prev.get("engines", []) + names))
        config["notes"] = list(prev.get("notes") or [])
    config["notes"] = list(dict.fromkeys((config.get("notes") or []) + list(notes or [])))
    cfg_path.write_text(json.dumps(config, indent=1) + "\n")
    report.record_machine(out, tokenizer, names)
    records = run_tasks(
        masks_tasks(files, names),
        out=out,
        tokenizer=tokenizer,
        timeout=timeout,
        memory_mb=memory_mb,
        resume=resume,
        progress=progress,
        desc="bench masks",
    )
    report.record_machine(out, tokenizer, names, final=True)
    wanted = {f.name for f in files}
    records = [r for r in records if r.get("key") in wanted and r.get("engine") in config["engines"]]
    report.write_masks_report(out, records, config, compare=compare, plot=plot)
    return out
