"""``structgen bench fuzz``: random walks through compiled grammars' allowed
tokens, every complete output validated with ``jsonschema``.

A walk asks the matcher for its mask at every step and takes one allowed token,
chosen by a policy:

* ``uniform``: any allowed token, all alike (but whitespace-only tokens are
  mostly passed over where others are allowed, see :data:`SKIP_BLANK`);
* ``closing``: mostly tokens made of closing quotes and brackets, so that
  strings, objects and arrays close and outputs finish within the budget;
* ``seeded``: the tokens of a valid instance of the schema (from its tests)
  for a random number of steps, then as ``closing``: it reaches the deep
  states that blind walks seldom do.

Where the output so far is complete, the walk ends there with the policy's
probability. Each step checks what the engine promises: the mask is never
empty (a *dead end*), it allows EOS exactly where the matcher accepts, and
``advance`` takes every token it allows. Each complete output must be UTF-8,
JSON and valid (``jsonschema`` with its format checker, through
:func:`~structgen.frontends.json_schema.validation_errors`, which never fetches
a remote reference); under ``canonical=True`` it must also be spelled
canonically with the declared member order.

The campaign compiles every schema of its sources (MaskBench files, the JSON
Schema Test Suite's groups, hypothesis-generated schemas) for each vocabulary,
in the schema's own meaning (``plain``) and as generation compiles it
(``canonical=True, closed_objects=True``), with compact and flexible
whitespace, and counts outcomes per source, tokenizer, mode, whitespace and
policy. Results: ``results.json``, ``summary.md`` and ``failures.jsonl`` (each
broken promise, and each walk stopped by a size cap, with its schema) under
``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import random
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

POLICIES = ("uniform", "closing", "seeded")
MODES: dict[str, dict[str, bool]] = {"plain": {}, "generation": {"canonical": True, "closed_objects": True}}
WHITESPACE = ("compact", "flexible")
# Chance of ending the output where it may end, per policy.
STOP = {"uniform": 0.3, "closing": 0.8, "seeded": 0.5}
CLOSING_BIAS = 0.7  # chance that a closing walk picks among the closing tokens
# Chance of passing over whitespace-only tokens where others are allowed: under
# flexible whitespace they are most of the allowed tokens between values.
SKIP_BLANK = 0.8
# Outcomes that break a promise of the engine; they and ``limit`` (a walk
# stopped by a documented size cap) are written to failures.jsonl.
BROKEN = ("invalid", "noncanonical", "dead_end", "mask_error", "refused", "crash")
RECORDED = BROKEN + ("limit",)
# Tokens made of quotes and closing brackets (and whitespace, for flexible
# whitespace). Those that start with a quote come first: in a string a '}' or
# ']' closes nothing, and where a value starts a quote opens a string that the
# next quote closes.
_CLOSING = re.compile(rb'[ \t\n\r]*["}\]][" \t\n\r}\]]*')
_QUOTE_FIRST = re.compile(rb'[ \t\n\r]*"')
_BLANK = re.compile(rb'[ \t\n\r]+')
_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEFAULT_MASKBENCH = _DATA / "maskbench-dev"
DEFAULT_SUITE = _DATA / "json-schema-test-suite" / "tests" / "draft2020-12"


# --------------------------------------------------------------------------- walking


@dataclass
class Walk:
    """A walk's output bytes and how it ended: ``complete``, ``budget`` (out
    of tokens), ``timeout``, ``limit`` (the automaton met a documented size
    cap, ``detail`` says which), or a broken promise: ``dead_end``,
    ``mask_error`` (EOS allowed where the matcher does not accept, or the
    reverse), ``refused`` (``advance`` refused a token the mask allowed)."""

    text: bytes
    outcome: str
    detail: str = ""


class Walker:
    """Walks matchers of grammars compiled for one vocabulary (what it keeps
    per token is computed once)."""

    def __init__(self, vocab: Any, max_tokens: int = 200) -> None:
        from structgen.index.token_index import TokenSpeller

        self.vocab = vocab
        self.max_tokens = max_tokens
        self.eos = np.asarray(sorted(vocab.eos_ids), dtype=np.int64)
        # Token sets as packed masks, like the matcher's (a step is then a few
        # ANDs of a few KB, not passes over one entry per token).
        self.regular = self._pack(~np.isin(np.arange(len(vocab.token_bytes)), self.eos))
        self.nonblank = self._pack([not _BLANK.fullmatch(b) for b in vocab.token_bytes])
        closes = np.array([bool(_CLOSING.fullmatch(b)) for b in vocab.token_bytes])
        self.closes = self._pack(closes)
        self.quotes = self._pack(closes & np.array([bool(_QUOTE_FIRST.match(b)) for b in vocab.token_bytes]))
        self.speller = TokenSpeller.of(vocab)

    @staticmethod
    def _pack(flags: Any) -> np.ndarray:
        return np.packbits(np.asarray(flags, dtype=bool), bitorder="little")

    @staticmethod
    def _has(bits: np.ndarray, ids: Any) -> np.ndarray:
        """Whether each of ``ids`` is set in the packed mask ``bits``."""
        ids = np.asarray(ids)
        return (bits[ids >> 3] >> (ids & 7)) & 1 == 1

    def _pick(self, bits: np.ndarray, rng: random.Random) -> int:
        """A token drawn uniformly from the packed mask ``bits`` (not empty):
        by rejection while that is likely to work (masks inside strings allow
        most tokens), else from the bytes that have a bit set."""
        n = len(self.vocab.token_bytes)
        for _ in range(16):
            t = rng.randrange(n)
            if bits[t >> 3] >> (t & 7) & 1:
                return t
        nz = np.flatnonzero(bits)
        ids = (nz[:, None] * 8 + np.arange(8))[np.unpackbits(bits[nz], bitorder="little").reshape(-1, 8) == 1]
        return int(ids[rng.randrange(ids.size)])

    def seed_tokens(self, text: bytes) -> list[int]:
        """Tokens that spell ``text`` (greedy, longest first)."""
        return self.speller.greedy_tokens(text)

    def walk(self, matcher: Any, rng: random.Random, policy: str = "closing", seed: list[int] | None = None,
             deadline: float | None = None) -> Walk:
        """One walk from ``matcher``'s state (see the module docstring);
        ``seed``: the tokens a ``seeded`` walk follows, at most a random
        number of them."""
        from structgen.errors import GrammarTooLargeError

        out: list[bytes] = []
        try:
            return self._walk(matcher, rng, policy, seed, deadline, out)
        except GrammarTooLargeError as e:  # the automaton grows as the walk goes
            return Walk(b"".join(out), "limit", str(e))

    def _walk(self, matcher: Any, rng: random.Random, policy: str, seed: list[int] | None, deadline: float | None,
              out: list[bytes]) -> Walk:
        tb = self.vocab.token_bytes
        follow = seed[: rng.randint(0, len(seed))] if seed else []
        stop = STOP[policy]
        for step in range(self.max_tokens):
            if deadline is not None and time.monotonic() > deadline:
                return Walk(b"".join(out), "timeout")
            bits = matcher.allowed_bitmask()
            accepting = matcher.is_accepting()
            if not accepting and not bits.any():
                return Walk(b"".join(out), "dead_end")
            eos_allowed = self._has(bits, self.eos)
            if not eos_allowed.all() if accepting else eos_allowed.any():
                return Walk(b"".join(out), "mask_error")
            if step < len(follow) and self._has(bits, follow[step]):
                token = follow[step]
            else:
                follow = []
                choice = bits & self.regular
                if accepting and (rng.random() < stop or not choice.any()):
                    if not matcher.advance(int(self.eos[0])):
                        return Walk(b"".join(out), "refused")
                    return Walk(b"".join(out), "complete")
                preferences = [self.nonblank] if rng.random() < SKIP_BLANK else []
                if policy != "uniform" and rng.random() < CLOSING_BIAS:
                    preferences += [self.quotes, self.closes]
                for preferred in preferences:  # narrowed by each set that keeps a token
                    narrower = choice & preferred
                    if narrower.any():
                        choice = narrower
                token = self._pick(choice, rng)
            if not matcher.advance(token):
                return Walk(b"".join(out), "refused")
            out.append(tb[token])
        return Walk(b"".join(out), "budget")


def problem(text: bytes, validator: Any, *, schema: Any = None, canonical: bool = False) -> tuple[str, str] | None:
    """What is wrong with a complete output: ``(outcome, detail)`` with
    outcome ``invalid`` (not UTF-8, not JSON, or invalid against the schema)
    or ``noncanonical`` (under ``canonical``: spelled otherwise than
    :data:`~structgen.frontends.json_text.CANONICAL_JSON`, or members out of
    the declared order of ``schema``'s ``properties``); ``None`` if nothing is."""
    from structgen.frontends.json_schema import validation_errors
    from structgen.frontends.json_text import CANONICAL_JSON

    try:
        value = json.loads(text.decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return "invalid", f"not JSON: {e}"
    errors = validation_errors(validator, value)
    if errors:
        return "invalid", f"{errors[0].message[:300]} at {list(errors[0].absolute_path)}"
    if canonical:
        if not re.fullmatch(CANONICAL_JSON, text.decode("utf-8")):
            return "noncanonical", "not spelled canonically"
        if not declared_order_kept(value, schema):
            return "noncanonical", "members out of declared order"
    return None


def declared_order_kept(value: Any, schema: Any) -> bool:
    """Members of objects with declared ``properties`` come in that order."""
    if isinstance(value, dict) and isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
        declared = [k for k in schema["properties"] if k in value]
        seen = [k for k in value if k in schema["properties"]]
        if declared != seen:
            return False
        return all(declared_order_kept(value[k], schema["properties"][k]) for k in declared)
    return True


def spell(value: Any, *, whitespace: str, canonical: bool, rng: random.Random) -> bytes:
    """A spelling of ``value`` the grammar is likely to accept (a seeded walk
    follows it only as far as the grammar allows)."""
    if whitespace == "flexible" and not canonical:
        return json.dumps(value, indent=rng.choice((None, 2)), ensure_ascii=rng.random() < 0.5).encode()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- sources


@dataclass
class Case:
    """A schema to fuzz, with the valid instances a seeded walk may follow."""

    source: str
    name: str
    schema: Any
    instances: list = field(default_factory=list)


def valid_instances(schema: Any, candidates: Iterable[Any]) -> list:
    """The candidates that ``jsonschema`` finds valid (tests can disagree with
    the validator, and hypothesis's ``oneOf`` branches can overlap)."""
    from structgen.errors import StructgenError
    from structgen.frontends.json_schema import schema_validator, validation_errors

    try:
        validator = schema_validator(schema)
        return [v for v in candidates if not validation_errors(validator, v)]
    except StructgenError:  # a schema jsonschema cannot evaluate: no seed
        return []


def maskbench_cases(path: str | Path, sample: int | None = None, seed: int = 0) -> list[Case]:
    """MaskBench files (a stratified sample of ``sample`` of them), with the
    data of their valid tests."""
    from structgen.bench.maskbench import discover, stratified_sample

    files = discover([path])
    if sample is not None:
        files = stratified_sample(files, sample, seed)
    cases = []
    for f in files:
        doc = json.loads(f.read_text(encoding="utf-8"))
        candidates = [t["data"] for t in doc.get("tests", []) if t.get("valid")]
        cases.append(Case("maskbench", f.stem, doc["schema"], valid_instances(doc["schema"], candidates)))
    return cases


def suite_cases(path: str | Path) -> list[Case]:
    """Every group of the JSON Schema Test Suite files under ``path`` (a
    draft's directory: its files and ``optional/format/``), with its valid tests."""
    path = Path(path)
    files = sorted(path.glob("*.json")) + sorted((path / "optional" / "format").glob("*.json")) if path.is_dir() else [path]
    cases = []
    for f in files:
        for i, group in enumerate(json.loads(f.read_text(encoding="utf-8"))):
            candidates = [t["data"] for t in group["tests"] if t["valid"]]
            name = f"{f.relative_to(path).with_suffix('') if path.is_dir() else f.stem}#{i}"
            cases.append(Case("suite", name, group["schema"], valid_instances(group["schema"], candidates)))
    return cases


def hypothesis_cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` schemas from :mod:`structgen.bench.fuzz_schemas`'s strategy."""
    from structgen.bench.fuzz_schemas import draw_schemas

    return [Case("hypothesis", f"h{i}", schema, valid_instances(schema, [value]))
            for i, (schema, value) in enumerate(draw_schemas(n, seed))]


# --------------------------------------------------------------------------- the campaign


@dataclass
class Campaign:
    """Counts per ``(source, tokenizer, mode, whitespace, policy)`` (walks and
    their outcomes) and per ``(source, tokenizer, mode, whitespace)``
    (schemas: compiled, skipped, crashed, cut short by time, a cap or a
    crash), and the failures."""

    walks: dict = field(default_factory=dict)
    schemas: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)

    def count(self, table: dict, key: tuple, what: str, n: int = 1) -> None:
        table.setdefault(key, Counter())[what] += n

    def totals(self, source: str | None = None) -> Counter:
        total: Counter = Counter()
        for table in (self.walks, self.schemas):
            for key, c in table.items():
                if source is None or key[0] == source:
                    total.update(c)
        return total


def fuzz_case(case: Case, tokenizer: str, walker: Walker, mode: str, whitespace: str, campaign: Campaign, *,
              walks: int, seed: int = 0, grammar_seconds: float = 20.0) -> None:
    """Compile ``case`` once and run ``walks`` walks per policy on it."""
    import structgen
    from structgen.errors import StructgenError
    from structgen.frontends.json_schema import schema_validator

    key = (case.source, tokenizer, mode, whitespace)
    campaign.count(campaign.schemas, key, "schemas")
    failure = {"source": case.source, "name": case.name, "tokenizer": tokenizer, "mode": mode,
               "whitespace": whitespace, "schema": case.schema}
    try:
        grammar = structgen.compile_json_schema(case.schema, walker.vocab, whitespace=whitespace, **MODES[mode])
        validator = schema_validator(case.schema)
    except StructgenError:
        campaign.count(campaign.schemas, key, "skipped")
        return
    except Exception as e:  # an untyped error out of the public API is a bug
        campaign.count(campaign.schemas, key, "crash")
        campaign.failures.append({**failure, "outcome": "crash", "detail": f"{type(e).__name__}: {e}"[:500]})
        return
    campaign.count(campaign.schemas, key, "compiled")
    rng = random.Random(f"{seed}/{case.source}/{case.name}/{tokenizer}/{mode}/{whitespace}")
    canonical = bool(MODES[mode].get("canonical"))
    deadline = time.monotonic() + grammar_seconds
    for policy in POLICIES:
        if policy == "seeded" and not case.instances:
            campaign.count(campaign.walks, key + (policy,), "no_instance", walks)
            continue
        for _ in range(walks):
            seed_tokens = None
            if policy == "seeded":
                text = spell(rng.choice(case.instances), whitespace=whitespace, canonical=canonical, rng=rng)
                seed_tokens = walker.seed_tokens(text)
            try:
                w = walker.walk(grammar.matcher(), rng, policy, seed_tokens, deadline)
                outcome, detail = w.outcome, w.detail
            except Exception as e:  # any other error out of the matcher is a bug
                w, outcome, detail = Walk(b"", "crash"), "crash", f"{type(e).__name__}: {e}"[:500]
            if outcome == "complete":
                try:
                    found = problem(w.text, validator, schema=case.schema, canonical=canonical)
                except StructgenError:  # jsonschema cannot evaluate the schema
                    outcome = "unchecked"
                else:
                    outcome, detail = found if found else ("output", "")
            counts = campaign.walks.setdefault(key + (policy,), Counter())
            counts["walks"] += 1
            counts[outcome] += 1
            if outcome in RECORDED:
                campaign.failures.append({**failure, "policy": policy, "outcome": outcome, "detail": detail,
                                          "text": w.text.decode("utf-8", "backslashreplace")[:2000]})
            if outcome in ("timeout", "limit", "crash"):
                campaign.count(campaign.schemas, key, "cut_short")
                return


def run_campaign(cases: list[Case], walkers: dict[str, Walker], *, walks: int = 4, seed: int = 0,
                 grammar_seconds: float = 20.0, modes: Iterable[str] = tuple(MODES),
                 whitespaces: Iterable[str] = WHITESPACE, progress: bool = False) -> Campaign:
    """Fuzz every case with every walker (tokenizer), mode and whitespace."""
    campaign = Campaign()
    jobs = [(c, t, m, w) for c in cases for t in walkers for m in modes for w in whitespaces]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="grammar", file=sys.stderr, mininterval=1 if sys.stderr.isatty() else 60)
    for case, tokenizer, mode, whitespace in jobs:
        fuzz_case(case, tokenizer, walkers[tokenizer], mode, whitespace, campaign, walks=walks, seed=seed,
                  grammar_seconds=grammar_seconds)
        if bar is not None:
            total = campaign.totals()
            bar.set_postfix_str(f"{case.source} outputs={total['output']} broken={sum(total[b] for b in BROKEN)}",
                                refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    return campaign


# --------------------------------------------------------------------------- report

_WALK_COLUMNS = ("walks", "output", "invalid", "noncanonical", "dead_end", "mask_error", "refused", "budget",
                 "timeout", "limit", "crash", "unchecked", "no_instance")
_SCHEMA_COLUMNS = ("schemas", "compiled", "skipped", "crash", "cut_short")


def _table(keys: list[str], columns: Iterable[str], rows: Iterable[tuple[tuple, Counter]]) -> str:
    """A markdown table: the key columns, then the counts, right-aligned."""
    columns = list(columns)
    lines = ["| " + " | ".join(keys + columns) + " |", "|" + " --- |" * len(keys) + " ---: |" * len(columns)]
    lines += ["| " + " | ".join(list(k) + [f"{c[col]:,}" for col in columns]) + " |" for k, c in rows]
    return "\n".join(lines)


def report(campaign: Campaign, out: Path, command: str, config: dict, seconds: float) -> Path:
    """Write ``results.json``, ``summary.md`` and ``failures.jsonl`` to ``out``."""
    from structgen.bench.report import machine_info

    out.mkdir(parents=True, exist_ok=True)
    sources = sorted({k[0] for k in campaign.schemas})
    total = campaign.totals()
    results = {
        "command": command,
        "config": config,
        "seconds": round(seconds, 1),
        "machine": machine_info(",".join(config.get("tokenizers", []))),
        "totals": {c: total[c] for c in _WALK_COLUMNS + _SCHEMA_COLUMNS},
        "per_source": {s: {c: campaign.totals(s)[c] for c in _WALK_COLUMNS + _SCHEMA_COLUMNS} for s in sources},
        "walks": [dict(zip(("source", "tokenizer", "mode", "whitespace", "policy"), k), **{c: v[c] for c in _WALK_COLUMNS})
                  for k, v in sorted(campaign.walks.items())],
        "schemas": [dict(zip(("source", "tokenizer", "mode", "whitespace"), k), **{c: v[c] for c in _SCHEMA_COLUMNS})
                    for k, v in sorted(campaign.schemas.items())],
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "failures.jsonl", "w", encoding="utf-8") as fh:
        for f in campaign.failures:
            fh.write(json.dumps(f, ensure_ascii=False) + "\n")
    broken = sum(total[b] for b in BROKEN)
    lines = [
        f"# Fuzz campaign, {_dt.date.today().isoformat()}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores; structgen "
        f"{results['machine']['structgen_commit']}; {seconds / 60:.0f} min.",
        "",
        f"**{total['output']:,} complete outputs validated: {total['invalid']} invalid, {total['noncanonical']} "
        f"not canonical, {total['dead_end']} dead ends, {total['mask_error']} masks disagreeing with acceptance, "
        f"{total['refused']} allowed tokens refused, {total['crash']} untyped errors** "
        f"({total['walks']:,} walks; {total['budget']:,} ran out of their {config['max_tokens']}-token budget, "
        f"{total['timeout']} out of time, {total['limit']} stopped by a size cap; {total['skipped']:,} of {total['schemas']:,} compilations skipped as "
        "unsupported or unsatisfiable).",
        "",
        "Walks: `uniform` takes any allowed token; `closing` mostly takes tokens that close a string, object or "
        f"array; `seeded` follows a valid instance from the schema's tests for a random number of tokens, then walks "
        f"as `closing`. Where the output may end, a walk ends it with probability {STOP['uniform']}, "
        f"{STOP['closing']} and {STOP['seeded']} respectively. Modes: `plain` is the schema's meaning; "
        "`generation` is `canonical=True, closed_objects=True`, where outputs must also be spelled canonically in "
        "declared member order.",
        "",
        "## Per source",
        "",
        _table(["source"], dict.fromkeys(_SCHEMA_COLUMNS + _WALK_COLUMNS), [((s,), campaign.totals(s)) for s in sources]),
        "",
        "## Per source, tokenizer, mode, whitespace and policy",
        "",
        _table(["source", "tokenizer", "mode", "whitespace", "policy"], _WALK_COLUMNS, sorted(campaign.walks.items())),
        "",
        "## Compilations",
        "",
        _table(["source", "tokenizer", "mode", "whitespace"], _SCHEMA_COLUMNS, sorted(campaign.schemas.items())),
        "",
        f"Broken promises and walks stopped by a size cap, each with its schema: `failures.jsonl` "
        f"({broken} + {total['limit']} lines).",
        "",
    ]
    path = out / "summary.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--maskbench", default=str(DEFAULT_MASKBENCH), help="MaskBench directory, '' for none (default: %(default)s)")
    p.add_argument("--sample", type=int, default=None, help="a stratified sample of N MaskBench schemas (default: all)")
    p.add_argument("--suite", default=str(DEFAULT_SUITE), help="a JSON Schema Test Suite draft directory, '' for none (default: %(default)s)")
    p.add_argument("--hypothesis", type=int, default=300, help="N hypothesis-generated schemas, 0 for none (needs hypothesis; default: %(default)s)")
    p.add_argument("--tokenizers", default="smollm2,llama3", help="comma-separated, as for masks (default: %(default)s)")
    p.add_argument("--walks", type=int, default=4, help="walks per policy per compiled grammar (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=200, help="token budget of a walk (default: %(default)s)")
    p.add_argument("--grammar-seconds", type=float, default=20.0, help="time for one compiled grammar's walks (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default: benchmarks/results/fuzz-DATE)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _command(config: dict) -> str:
    """The command line that repeats this run (with its niceness)."""
    words = [f"nice -n {os.nice(0)}"] if os.nice(0) else []
    words += ["structgen bench fuzz"]
    for k, v in config.items():
        if v is True:
            words.append(f"--{k.replace('_', '-')}")
        elif v is not None and v is not False:
            words.append(f"--{k.replace('_', '-')} {shlex.quote(str(v))}")
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    """The campaign of ``structgen bench fuzz``; exit status 1 if a promise broke."""
    from structgen.bench.tokenizers import load_tokenizer
    from structgen.vocab import Vocabulary

    started = time.monotonic()
    for flag, path in (("--maskbench", args.maskbench), ("--suite", args.suite)):
        if path and not Path(path).exists():
            raise SystemExit(f"structgen bench fuzz: {flag} {path} does not exist ('' leaves that source out)")
    if args.hypothesis and importlib.util.find_spec("hypothesis") is None:
        raise SystemExit("structgen bench fuzz: --hypothesis needs the hypothesis package (pip install hypothesis); "
                         "--hypothesis 0 leaves that source out")
    cases: list[Case] = []
    if args.maskbench:
        cases += maskbench_cases(args.maskbench, args.sample, args.seed)
    if args.suite:
        cases += suite_cases(args.suite)
    if args.hypothesis:
        cases += hypothesis_cases(args.hypothesis, args.seed)
    names = [t for t in args.tokenizers.split(",") if t]
    walkers = {t: Walker(Vocabulary.from_tokenizer(load_tokenizer(t)), args.max_tokens) for t in names}
    print(f"{len(cases)} schemas x {len(names)} tokenizers x {len(MODES)} modes x {len(WHITESPACE)} whitespace; "
          f"{args.walks} walks per policy", file=sys.stderr)
    campaign = run_campaign(cases, walkers, walks=args.walks, seed=args.seed, grammar_seconds=args.grammar_seconds,
                            progress=not args.no_progress)
    config = {k: v for k, v in vars(args).items() if k not in ("func", "bench_command", "command")}
    out = Path(args.out or f"benchmarks/results/fuzz-{_dt.date.today().isoformat()}")
    path = report(campaign, out, _command(config), {**config, "tokenizers": names}, time.monotonic() - started)
    total = campaign.totals()
    print(f"{total['output']:,} outputs validated, {total['invalid']} invalid, {total['dead_end']} dead ends; report: {path}")
    return 1 if any(total[b] for b in BROKEN) else 0
