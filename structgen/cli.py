"""The ``structgen`` command line.

    structgen generate --schema person.json "Invent a person."
    structgen generate --pydantic myapp.models:Cat "Describe a cat."
    structgen generate --regex "[0-9]{3}-[0-9]{4}" "A phone number:"
    structgen generate --choice yes,no "Is the sky blue?"
    structgen generate --stream --schema person.json "Invent a person."
    structgen generate --grammar grammars/arithmetic.gbnf "Write a sum."
    structgen compile person.json            # what the schema became
    structgen bench ...                      # benchmarks (structgen.bench)

Exit codes: 0 success; 2 bad usage or input (unreadable schema, invalid or
unsupported schema, bad regex or grammar, unknown model: the message says
which and what to do); 3 the output was cut off by ``--max-new-tokens`` (the
partial output goes to stderr); 1 an unexpected internal error (a bug:
the traceback is shown).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_TRUNCATED = 3


class CliError(Exception):
    """A user-facing error: message to stderr, exit 2."""


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="structgen",
        description="Constrained decoding: make a language model's output match a JSON Schema, a Pydantic "
        "model, a regular expression, a list of choices or a GBNF grammar.",
        epilog="Exit codes: 0 ok, 2 bad usage or input, 3 output cut off by --max-new-tokens, 1 internal error. "
        "Run 'structgen COMMAND --help' for each command.",
    )
    from structgen import __version__

    parser.add_argument("--version", action="version", version=f"structgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{generate,compile,bench}")
    sub.required = True

    g = sub.add_parser(
        "generate",
        help="generate output that matches a spec and print it",
        description="Generate output that matches the spec and print it: JSON for --schema/--pydantic "
        "(one line per prompt), the text itself for --regex/--choice/--grammar. Several prompts run as one "
        "batch. Progress (model loading, compilation) goes to stderr.",
        epilog="Exit codes: 0 ok, 2 bad usage or input, 3 output cut off by --max-new-tokens, 1 internal error.",
    )
    _add_spec_arguments(g, positional_schema=False)
    g.add_argument("prompts", nargs="+", metavar="PROMPT", help="the prompt ('-' reads it from stdin); several prompts run batched")
    g.add_argument("--model", default=None, help="a local Hugging Face model directory, a .gguf file or a Hugging Face hub id (default: the packaged SmolLM2-135M-Instruct)")
    g.add_argument("--max-new-tokens", type=_positive_int, default=256, help="token limit per output (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=None, help="sampling temperature; 0 or unset: greedy")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling threshold (with --temperature)")
    g.add_argument("--top-k", type=_positive_int, default=None, help="keep the k most likely tokens (with --temperature)")
    g.add_argument("--seed", type=int, default=None, help="random seed for reproducible sampling")
    g.add_argument("--system", default=None, help="a system prompt (chat models)")
    g.add_argument("--no-chat-template", action="store_true", help="send the prompt as raw text, not as a chat message")
    g.add_argument("--no-jump-forward", action="store_true", help="sample every token, even those the grammar forces")
    g.add_argument("--indent", type=int, default=None, help="pretty-print JSON output with this indent")
    g.add_argument("--stats", action="store_true", help="print timing and token counts to stderr")
    g.add_argument("--stream", action="store_true", help="print the output as the model writes it (its own text: compact JSON), one prompt only")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    g.set_defaults(func=cmd_generate)

    c = sub.add_parser(
        "compile",
        help="show what a spec compiles to (rules, size, states, what is not enforced)",
        description="Compile a spec for a tokenizer and show what it became: the grammar's rules and size, "
        "the byte classes and automaton states built for the first mask, the tokens allowed at the start, "
        "and (with --lenient) which keywords are not enforced. A spec that cannot be compiled prints the "
        "error and exits with 2.",
        epilog="Exit codes: 0 ok, 2 the spec does not compile (or bad usage), 1 internal error.",
    )
    _add_spec_arguments(c, positional_schema=True)
    c.add_argument("--tokenizer", default=None, help="a tokenizer or model directory, .gguf file or Hugging Face hub id (default: the packaged SmolLM2-135M-Instruct's)")
    c.add_argument("--rules", type=int, default=20, metavar="N", help="show at most N rules (default: %(default)s; 0: none)")
    c.add_argument("--width", type=int, default=160, help="cut each rule's text at this many characters (default: %(default)s)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress messages on stderr")
    c.set_defaults(func=cmd_compile)

    _add_bench(sub)
    return parser


def _add_spec_arguments(p: argparse.ArgumentParser, *, positional_schema: bool) -> None:
    group = p.add_argument_group("spec (exactly one)")
    if positional_schema:
        group.add_argument("schema_file", nargs="?", metavar="SCHEMA", help="a JSON Schema file ('-': stdin) or inline JSON")
    group.add_argument("--schema", default=None, help="a JSON Schema file ('-': stdin) or inline JSON text")
    group.add_argument("--pydantic", default=None, metavar="MODULE:CLASS", help="a Pydantic model: 'package.module:Class' or 'path/to/file.py:Class'")
    group.add_argument("--regex", default=None, help="a regular expression the whole output must match")
    group.add_argument("--choice", default=None, metavar="A,B,C", help="comma-separated options; the output is one of them")
    group.add_argument("--grammar", default=None, metavar="FILE", help="a GBNF grammar file (start rule 'root')")
    opts = p.add_argument_group("JSON options")
    opts.add_argument("--whitespace", default="compact", help="'compact' (default), 'flexible', or a number N: at most N whitespace characters per gap")
    opts.add_argument("--lenient", action="store_true", help="enforce what can be enforced, list the rest and validate the final output (default: refuse unsupported keywords)")
    opts.add_argument("--open-objects", action="store_true", help="let objects whose schema says nothing about extra keys have any extra keys, as the schema literally allows (default: their declared properties only)")


def _add_bench(sub) -> None:
    try:
        from structgen.bench.cli import add_parser
    except ModuleNotFoundError as e:
        if e.name in ("structgen.bench", "structgen.bench.cli"):
            return
        raise
    add_parser(sub)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


# ------------------------------------------------------------------- specs


def _spec_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    """The spec object and a short description of it."""
    given = {
        name: value
        for name, value in (
            ("schema", getattr(args, "schema_file", None) or args.schema),
            ("pydantic", args.pydantic),
            ("regex", args.regex),
            ("choice", args.choice),
            ("grammar", args.grammar),
        )
        if value is not None
    }
    if getattr(args, "schema_file", None) and args.schema:
        raise CliError("give the schema once: either as SCHEMA or with --schema")
    if len(given) != 1:
        names = ", ".join("--" + n for n in given) if given else "none"
        raise CliError(f"give exactly one spec: --schema, --pydantic, --regex, --choice or --grammar (got {names})")
    kind, value = next(iter(given.items()))
    from structgen.integrations.specs import Choice, Grammar, Regex

    if kind == "schema":
        return _read_schema(value), "JSON Schema" + ("" if value.lstrip().startswith(("{", "[")) else f" {value}")
    if kind == "pydantic":
        return _import_pydantic(value), f"Pydantic model {value}"
    if kind == "regex":
        return Regex(value), f"regex {value!r}"
    if kind == "choice":
        options = list(dict.fromkeys(value.split(",")))
        if options == [""]:
            raise CliError("--choice needs at least one option, e.g. --choice yes,no")
        return Choice(options), f"choice of {len(options)} option{'s' if len(options) > 1 else ''}"
    if not Path(value).is_file():
        raise CliError(f"grammar file {value!r} not found")
    return Grammar(Path(value)), f"GBNF grammar {value}"


def _read_schema(value: str) -> Any:
    if value == "-":
        text, where = sys.stdin.read(), "stdin"
    elif value.lstrip().startswith(("{", "[")) or value.strip() in ("true", "false"):
        text, where = value, "--schema"
    else:
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CliError(f"schema file {value!r} not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CliError(f"cannot read schema file {value!r}: {e}") from None
        where = value
    from structgen.frontends.json_schema import parse_schema_text

    try:
        schema = parse_schema_text(text)
    except json.JSONDecodeError as e:
        raise CliError(f"{where} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(schema, (dict, bool)):
        raise CliError(f"{where} is not a JSON Schema: a schema is a JSON object (or true/false), not a {type(schema).__name__}")
    if isinstance(schema, dict) and isinstance(schema.get("schema"), (dict, bool)) and "tests" in schema:
        print(f"structgen: {where} is a MaskBench file; using its \"schema\"", file=sys.stderr)
        schema = schema["schema"]
    if isinstance(schema, dict) and schema and not (set(schema) & _SCHEMA_KEYWORDS):
        print(
            f"structgen: warning: {where} has no JSON Schema keyword at its top level ({', '.join(list(schema)[:5])}); "
            "as a schema it accepts any JSON value",
            file=sys.stderr,
        )
    return schema


_SCHEMA_KEYWORDS = {
    "type", "properties", "items", "prefixItems", "$ref", "$dynamicRef", "anyOf", "oneOf", "allOf", "not", "enum",
    "const", "if", "then", "else", "required", "additionalProperties", "patternProperties", "propertyNames",
    "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies", "pattern", "format",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
    "maxItems", "uniqueItems", "contains", "unevaluatedProperties", "unevaluatedItems", "$schema", "$defs",
    "definitions", "$id", "id", "title", "description", "nullable", "additionalItems",
}


def _import_pydantic(target: str):
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"--pydantic takes MODULE:CLASS (e.g. myapp.models:Cat or models.py:Cat), not {target!r}")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise CliError(f"--pydantic: file {module_name!r} not found")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except CliError:
        raise
    except ImportError as e:
        raise CliError(f"--pydantic: cannot import {module_name!r}: {e}") from None
    except Exception as e:  # the user's module failed while importing
        raise CliError(f"--pydantic: importing {module_name!r} failed: {type(e).__name__}: {e}") from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CliError(f"--pydantic: {module_name!r} has no attribute {attr!r}")
    from pydantic import BaseModel

    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise CliError(f"--pydantic: {target!r} is not a Pydantic model class")
    return obj


def _whitespace(value: str) -> str | int:
    if value.isdigit():
        return int(value)
    if value not in ("compact", "flexible"):
        raise CliError(f"--whitespace takes 'compact', 'flexible' or a number, not {value!r}")
    return value


# ---------------------------------------------------------------- progress


class _Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def start(self, message: str) -> float:
        if not self.quiet:
            print(f"structgen: {message}…", file=sys.stderr, flush=True)
        return time.perf_counter()

    def done(self, started: float, message: str = "done") -> None:
        if not self.quiet:
            print(f"structgen: {message} ({_fmt_s(time.perf_counter() - started)})", file=sys.stderr, flush=True)


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


# ---------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    spec, what = _spec_from_args(args)
    whitespace = _whitespace(args.whitespace)
    if args.prompts.count("-") > 1:
        raise CliError("only one prompt can be read from stdin ('-')")
    prompts = [sys.stdin.read() if p == "-" else p for p in args.prompts]
    if args.stream:
        clashes = [flag for flag, given in (("several prompts", len(prompts) > 1), ("--indent", args.indent is not None),
                                            ("--stats", args.stats)) if given]
        if clashes:
            raise CliError(f"--stream prints one output as it is written; it does not go with {', '.join(clashes)}")
    progress = _Progress(args.quiet)

    from structgen.integrations.specs import check

    closed = not args.open_objects
    check(spec, whitespace=whitespace, lenient=args.lenient, closed_objects=closed)  # fail fast, before loading a model

    from structgen.errors import TruncatedOutputError
    from structgen.integrations import generate as gen

    t = progress.start(f"loading model {args.model or 'SmolLM2-135M-Instruct'}")
    model, tokenizer = gen.default_model(args.model, progress=not args.quiet)
    progress.done(t, "model loaded")

    from structgen.integrations.specs import prepare

    t = progress.start(f"compiling {what}")
    prepared = prepare(
        spec, tokenizer, eos_ids=gen._model_eos_ids(model), whitespace=whitespace, lenient=args.lenient,
        closed_objects=closed,
    )
    prepared.grammar.matcher().allowed_bitmask()  # the first mask: where a big schema's time goes
    progress.done(t, "compiled")
    for note in prepared.notes:
        print(f"structgen: not enforced (validated afterwards): {note}", file=sys.stderr)

    options: dict[str, Any] = dict(
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        chat_template=not args.no_chat_template,
        system_prompt=args.system,
        jump_forward=not args.no_jump_forward,
    )
    if args.stream:
        return _print_stream(gen.stream(prepared, prompts[0], **options), args.max_new_tokens)
    t = progress.start(f"generating ({len(prompts)} prompt{'s' if len(prompts) > 1 else ''})")
    results = gen.generate(prepared, prompts if len(prompts) > 1 else prompts[0], return_details=True, **options)
    progress.done(t, "generated")
    if not isinstance(results, list):
        results = [results]

    status = EXIT_OK
    for i, r in enumerate(results):
        label = f" (prompt {i + 1})" if len(results) > 1 else ""
        if r.error is not None:
            if isinstance(r.error, TruncatedOutputError):
                print(
                    f"structgen: error{label}: the output was cut off by --max-new-tokens {args.max_new_tokens} "
                    f"before it was complete; raise --max-new-tokens. Partial output:\n{r.text}",
                    file=sys.stderr,
                )
                status = max(status, EXIT_TRUNCATED)
            else:
                print(f"structgen: error{label}: {r.error}", file=sys.stderr)
                status = max(status, EXIT_USAGE)
            print("", flush=True)  # keep one line per prompt on stdout
            continue
        print(_render(r.value, prepared, args.indent), flush=True)
    if args.stats and results:
        s = results[0].stats
        per_tok = s.total_s / max(1, s.generated_tokens) * 1000
        print(
            f"structgen: {s.generated_tokens} tokens ({s.forced_tokens} forced by jump-forward), "
            f"{s.forward_passes} forward passes, {s.total_s:.2f} s ({per_tok:.1f} ms/token; model "
            f"{s.model_s:.2f} s, constraint {s.constraint_s * 1000:.1f} ms, sampling {s.sample_s * 1000:.1f} ms)",
            file=sys.stderr,
        )
    return status


def _print_stream(items: Any, max_new_tokens: int) -> int:
    """Print each piece of text as it comes, then a newline. The last item
    is the validated value, not printed: each piece is printed when the next
    item arrives, one decoding step later."""
    from structgen.errors import TruncatedOutputError

    pending = ""
    try:
        for item in items:
            print(pending, end="", flush=True)
            pending = item
    except TruncatedOutputError as e:
        print(pending, flush=True)
        print(f"structgen: error: the output was cut off by --max-new-tokens {max_new_tokens} before it was "
              f"complete; raise --max-new-tokens. Partial output:\n{e.partial_text}", file=sys.stderr)
        return EXIT_TRUNCATED
    print(flush=True)
    return EXIT_OK


def _render(value: Any, prepared, indent: int | None) -> str:
    if prepared.kind == "pydantic":
        return value.model_dump_json(indent=indent)
    if prepared.is_json:
        return json.dumps(value, ensure_ascii=False, indent=indent)
    return value


# ----------------------------------------------------------------- compile


def cmd_compile(args: argparse.Namespace) -> int:
    spec, what = _spec_from_args(args)
    whitespace = _whitespace(args.whitespace)
    progress = _Progress(args.quiet)

    t = progress.start("loading tokenizer")
    from structgen.integrations.model import DEFAULT_MODEL, load_tokenizer

    tokenizer = load_tokenizer(args.tokenizer)
    progress.done(t, "tokenizer loaded")

    from structgen.integrations.specs import prepare, vocabulary_for

    vocab = vocabulary_for(tokenizer)
    t0 = time.perf_counter()
    t = progress.start(f"compiling {what}")
    prepared = prepare(spec, tokenizer, whitespace=whitespace, lenient=args.lenient,
                       closed_objects=not args.open_objects)
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    m = prepared.grammar.matcher()
    mask = m.allowed_mask()
    first_mask_s = time.perf_counter() - t1
    progress.done(t, "compiled")
    forced = m.forced_bytes()

    g = prepared.grammar
    stats = g.stats()
    allowed = [int(i) for i in mask.nonzero()[0]]
    report = {
        "spec": what,
        "tokenizer": args.tokenizer or DEFAULT_MODEL,
        "vocab_size": len(vocab.token_bytes),
        "rules": stats["rules"],
        "rule_families": stats["rule_families"],
        "ir_nodes": stats["ir_nodes"],
        "byte_classes": stats["byte_classes"],
        "states_built": stats["states_built"],
        "masks_cached": stats["masks_cached"],
        "compile_ms": round(compile_s * 1000, 3),
        "first_mask_ms": round(first_mask_s * 1000, 3),
        "tokens_allowed_at_start": len(allowed),
        "forced_start": forced.decode("utf-8", "replace"),
        "not_enforced": list(prepared.notes),
        "lenient": bool(args.lenient),
        "whitespace": whitespace,
    }
    shown = sorted(g.grammar.rules.items(), key=lambda kv: kv[0] != g.grammar.start)
    if args.json:
        report["rule_text"] = {name: render_expr(body, args.width) for name, body in shown[: max(0, args.rules)]}
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_OK

    out = [
        f"spec:          {report['spec']}",
        f"tokenizer:     {report['tokenizer']} ({report['vocab_size']} tokens, {vocab.kind})",
        f"grammar:       {report['rules']} rule{'s' if report['rules'] != 1 else ''}, {report['ir_nodes']} IR nodes"
        f" (start rule: {g.grammar.start})"
        + (f"; {stats['rule_families']} rule families, {stats['family_states_built']} of their states built so far"
           if stats["rule_families"] else ""),
        f"automaton:     {report['byte_classes']} byte classes; {report['states_built']} states built and "
        f"{report['masks_cached']} masks cached for the first mask (states are built lazily, as generation needs them)",
        f"time:          compile {_fmt_s(compile_s)}, first mask {_fmt_s(first_mask_s)}",
        f"start:         {len(allowed)} tokens allowed"
        + (f"; forced prefix {report['forced_start']!r}" if forced else ""),
    ]
    if prepared.is_json:
        if prepared.notes:
            out.append(f"not enforced:  {len(prepared.notes)} (outputs are validated with jsonschema afterwards)")
            out.extend(f"  - {note}" for note in prepared.notes)
        else:
            out.append("not enforced:  nothing (every keyword is enforced while generating)")
    if args.rules > 0:
        out.append("rules:")
        for name, body in shown[: args.rules]:
            out.append(f"  {name} ::= {render_expr(body, args.width)}")
        if len(shown) > args.rules:
            out.append(f"  … {len(shown) - args.rules} more (--rules N to show more)")
    print("\n".join(out))
    return EXIT_OK


def render_expr(e: tuple, width: int = 160) -> str:
    """A grammar IR expression as regex-like text, cut at ``width`` characters."""
    parts: list[str] = []
    budget = [max(width, 8) + 1]

    def emit(s: str) -> None:
        if budget[0] > 0:
            parts.append(s)
            budget[0] -= len(s)

    def byte_text(lo: int, hi: int) -> str:
        def one(b: int) -> str:
            c = chr(b)
            if 0x21 <= b < 0x7F and c not in "\\[]()|*+?{}.^$\"":
                return c
            if c in "\\[]()|*+?{}.^$\"":
                return "\\" + c
            return {0x20: " ", 0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}.get(b, f"\\x{b:02x}")

        return one(lo) if lo == hi else f"{one(lo)}-{one(hi)}"

    def walk(x: tuple, parent: str) -> None:
        if budget[0] <= 0:
            return
        kind = x[0]
        if kind == "bytes":
            ranges = x[1]
            if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
                emit(byte_text(*ranges[0]))
            elif len(ranges) == 1 and ranges[0] == (0, 255):
                emit(".")
            else:
                emit("[" + "".join(byte_text(lo, hi) for lo, hi in ranges) + "]")
        elif kind == "seq":
            wrap = parent == "rep"
            if wrap:
                emit("(")
            for y in x[1]:
                walk(y, "seq")
            if wrap:
                emit(")")
        elif kind in ("alt", "and"):  # "&": intersection
            wrap = parent in ("seq", "rep") or (parent in ("alt", "and") and parent != kind)
            if wrap:
                emit("(")
            for k, y in enumerate(x[1]):
                if k:
                    emit("|" if kind == "alt" else "&")
                walk(y, kind)
            if wrap:
                emit(")")
        elif kind == "rep":
            walk(x[1], "rep")
            lo, hi = x[2], x[3]
            if (lo, hi) == (0, None):
                emit("*")
            elif (lo, hi) == (1, None):
                emit("+")
            elif (lo, hi) == (0, 1):
                emit("?")
            elif lo == hi:
                emit(f"{{{lo}}}")
            else:
                emit(f"{{{lo},{'' if hi is None else hi}}}")
        elif kind == "ref":
            emit(f"<{x[1]}>")
        elif kind == "eps":
            emit('""')
        elif kind == "nothing":
            emit("∅")
        else:
            emit(f"<{kind}?>")

    walk(e, "top")
    text = "".join(parts)
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


# -------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from structgen.errors import StructgenError, TruncatedOutputError

    try:
        return int(args.func(args) or 0)
    except TruncatedOutputError as e:
        print(f"structgen: error: {e}", file=sys.stderr)
        return EXIT_TRUNCATED
    except (CliError, StructgenError) as e:
        print(f"structgen: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("structgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. structgen generate ... | head -1
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
