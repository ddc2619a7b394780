"""Hostile inputs: what a server compiling specs sent by strangers meets.

Every case runs in one child process (``python -m tests.test_hostile``) under
a 4 GB address-space cap and a CPU-time cap, with an audit hook that records
network use and file opens outside Python's own installation and this
repository. The child prints one JSON line per case; the tests here check
each case's exception class (every failure is a typed ``StructgenError``)
and that it touched neither network nor files. Time and memory are bounded
by the caps and the child's timeout, never by timing asserts here.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MEMORY_CAP = 4 << 30
CPU_CAP_S = 240
WALL_CAP_S = 300

CASES: dict = {}


def case(expect: str | None):
    """Register a hostile case: a function of the test vocabulary that must
    raise the structgen error named ``expect`` (None: must return)."""

    def register(fn):
        CASES[fn.__name__] = (fn, expect)
        return fn

    return register


def _vocab():
    from structgen.vocab import Vocabulary

    return Vocabulary.from_token_bytes([bytes([b]) for b in range(256)] + [b""], eos_ids=[256], name="bytes")


def _lenient_ref(uri: str):
    from structgen.integrations.specs import prepare

    schema = {"type": "object", "properties": {"a": {"$ref": uri}}, "required": ["a"]}
    return prepare(schema, _vocab(), lenient=True).finish('{"a":1}')


# ------------------------------------------------------------ 1. no I/O


@case("UnresolvableReferenceError")
def lenient_ref_to_the_network(): _lenient_ref("http://127.0.0.1:9/s.json")


@case("UnresolvableReferenceError")
def lenient_ref_to_a_file(): _lenient_ref("file:///etc/passwd")


@case("UnsupportedSchemaError")
def strict_ref_to_the_network():
    import structgen

    structgen.compile_json_schema({"$ref": "http://127.0.0.1:9/s.json"}, _vocab())


@case("GrammarError")
def grammar_that_looks_like_a_path():
    import structgen

    try:
        structgen.compile_grammar("/etc/passwd", _vocab())
    except structgen.StructgenError as e:
        assert "root:" not in str(e), str(e)
        raise


@case("GrammarError")
def grammar_spec_that_looks_like_a_path():
    from structgen.integrations.specs import Grammar, prepare

    prepare(Grammar("/proc/self/environ"), _vocab())


@case("RegexError")
def huge_bad_regex_is_quoted_briefly():
    import structgen

    try:
        structgen.compile_regex("(" + "a" * 100_000, _vocab())
    except structgen.StructgenError as e:
        assert len(str(e)) < 2000, len(str(e))
        raise


@case("GrammarError")
def huge_bad_grammar_line_is_quoted_briefly():
    from structgen.frontends.gbnf import load_gbnf

    try:
        load_gbnf('root ::= "' + "a" * 100_000 + '" )')
    except Exception as e:
        assert len(str(e)) < 2000, len(str(e))
        raise


# ------------------------------------------------ 2. only valid values


@case("TruncatedOutputError")
def processor_finish_after_a_token_limit():
    from structgen.integrations.transformers import LogitsProcessor

    LogitsProcessor({"type": "integer", "minimum": 100000}, _vocab()).finish("1")


@case("TruncatedOutputError")
def regex_finish_after_a_token_limit():
    from structgen.integrations.specs import Regex, prepare

    prepare(Regex("[0-9]{6}"), _vocab()).finish("10")


@case("OutputValidationError")
def finish_of_a_text_the_grammar_rejects():
    from structgen.integrations.specs import Choice, prepare

    prepare(Choice(["yes", "no"]), _vocab()).finish("maybe")


# ------------------------------------------------ 3. infinities, big numbers


def _compile(schema, **kw):
    import structgen

    structgen.compile_json_schema(schema, _vocab(), **kw).matcher().allowed_bitmask()


def _accepts(schema, text: str) -> bool:
    import structgen

    m = structgen.compile_json_schema(schema, _vocab()).matcher()
    return m.advance_bytes(text.encode()) and m.is_accepting()


@case("InvalidSchemaError")
def infinite_maximum_in_json_text(): _compile('{"type": "number", "maximum": Infinity}')


@case("InvalidSchemaError")
def nan_minimum_in_json_text(): _compile('{"type": "number", "minimum": NaN}')


@case("InvalidSchemaError")
def infinite_float_in_a_dict(): _compile({"type": "number", "exclusiveMaximum": float("-inf")})


@case("InvalidSchemaError")
def integer_of_five_thousand_digits_in_json_text(): _compile('{"maxLength": 1%s}' % ("0" * 5000))


@case("GrammarTooLargeError")
def huge_max_length(): _compile({"type": "string", "maxLength": 10**30})


@case("GrammarTooLargeError")
def huge_max_properties(): _compile({"type": "object", "maxProperties": 10**30})


@case("UnsupportedSchemaError")
def huge_repeat_in_a_pattern(): _compile({"type": "string", "pattern": "^a{99999999999999999999999}$"})


@case("RegexError")
def huge_repeat_in_a_regex():
    import structgen

    structgen.compile_regex("a{99999999999999999999}", _vocab())


@case("GrammarError")
def huge_repeat_in_a_grammar():
    import structgen

    structgen.compile_grammar('root ::= "a"{1,99999999999999999999}', _vocab())


@case(None)
def const_beyond_float_range_is_spelled_as_an_integer_only():
    big = 10**400
    assert _accepts({"const": big}, str(big))
    assert not _accepts({"const": big}, f"{big}.0")  # json.loads reads inf
    assert not _accepts({"enum": [2**53 + 1]}, f"{2**53 + 1}.0")  # json.loads reads 2**53
    assert _accepts({"const": 2**53}, f"{2**53}.0")


@case("OutputValidationError")
def finish_of_an_integer_json_cannot_read():
    from structgen.integrations.specs import prepare

    prepare({"type": "integer"}, _vocab()).finish("1" + "0" * 5000)


# ------------------------------------------------ 4. depth, ids, odd schemas


def _nested_properties(levels: int) -> dict:
    schema: dict = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


@case(None)
def schema_nested_five_hundred_levels(): _compile(_nested_properties(500))


@case("GrammarTooLargeError")
def schema_nested_five_thousand_levels(): _compile(_nested_properties(5000))


@case("GrammarTooLargeError")
def json_text_nested_five_thousand_levels(): _compile('{"items":' * 5000 + "{}" + "}" * 5000)


@case("GrammarTooLargeError")
def ref_chain_ten_thousand_arrays_deep():
    defs = {f"d{i}": {"type": "array", "items": {"$ref": f"#/$defs/d{i + 1}"}} for i in range(10_000)}
    _compile({"$defs": {**defs, "d10000": {"type": "integer"}}, "$ref": "#/$defs/d0"})


@case("GrammarTooLargeError")
def schema_that_contains_itself():
    schema: dict = {"type": "array"}
    schema["items"] = schema
    from structgen.frontends.json_schema import json_schema_to_grammar

    json_schema_to_grammar(schema)


@case("InvalidSchemaError")
def schema_that_contains_itself_compiled():
    schema: dict = {"type": "array"}
    schema["items"] = schema
    _compile(schema)


@case(None)
def cli_exits_2_for_a_deep_schema():
    from structgen.cli import EXIT_USAGE, main

    code = main(["generate", "--schema", '{"items":' * 5000 + "{}" + "}" * 5000, "a prompt"])
    assert code == EXIT_USAGE, code


@case(None)
def token_ids_of_any_integer_type():
    import numpy as np
    import torch

    from structgen.integrations.specs import prepare, vocabulary_for

    vocab = _vocab()
    assert vocabulary_for(vocab, np.int64(7)).eos_ids == (7, 256)
    m = prepare({"type": "integer"}, vocab).matcher()
    assert m.advance(np.int32(ord("1"))) and m.advance(torch.tensor(256)) and m.is_stopped()


@case(None)
def cached_masks_are_read_only():
    import structgen

    mask = structgen.compile_regex("[0-9]+", _vocab()).matcher().allowed_bitmask()
    try:
        mask[:] = 0xFF  # would let every matcher of the grammar, in every thread, take any token
    except ValueError:
        return
    raise AssertionError("a cached mask is writable")


@case("UnsupportedSchemaError")
def unknown_dialect(): _compile({"$schema": "http://example.com/my-dialect", "type": "integer"})


@case(None)
def unknown_dialect_in_lenient_mode_is_a_note():
    import structgen

    g = structgen.compile_json_schema({"$schema": "http://example.com/d", "type": "integer"}, _vocab(), lenient=True)
    assert any("unknown dialect" in note for note in g.notes), g.notes


@case("InvalidSchemaError")
def dialect_that_is_not_a_string(): _compile({"$schema": {"a": 1}})


@case("InvalidSchemaError")
def none_is_not_a_schema(): _compile(None)


@case("GrammarTooLargeError")
def five_thousand_optional_properties():
    try:
        _compile({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5000)}})
    except Exception as e:
        assert "minProperties" not in str(e), str(e)  # the schema has none
        raise


# ------------------------------------------------ size: shared parts cost once


@case(None)
def all_of_ref_chain_forty_levels_deep():
    # d_i = allOf[$ref d_i+1, $ref d_i+1]: 2**40 copies of the pattern unless conjunctions dedupe
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(40)}
    defs["d40"] = {"type": "string", "pattern": "^[a-z]+$"}
    assert _accepts({"$defs": defs, "$ref": "#/$defs/d0"}, '"abc"')


def _rule_chain(n: int, body: str) -> str:
    return "root ::= r0\n" + "".join(body.format(i, i + 1) + "\n" for i in range(n)) + f'r{n} ::= "b"\n'


@case(None)
def grammar_of_ten_thousand_chained_rules():
    import structgen

    m = structgen.compile_grammar(_rule_chain(10_000, 'r{} ::= "a" r{}'), _vocab()).matcher()
    assert m.advance_bytes(b"a" * 10_000 + b"b") and m.is_accepting()


@case("GrammarTooLargeError")
def grammar_of_twelve_hundred_chained_optional_rules():
    import structgen
    from structgen.frontends.gbnf import load_gbnf

    text = _rule_chain(1200, 'r{} ::= r{}? "a"')
    load_gbnf(text)  # loads (the left-recursion check walked the chain recursively)
    structgen.compile_grammar(text, _vocab()).matcher().allowed_bitmask()  # the automaton's nesting bound


@case(None)
def enum_of_a_hundred_thousand_strings():
    assert _accepts({"enum": [f"item-{i}" for i in range(100_000)]}, '"item-99999"')


def test_a_caller_registry_resolves_outside_references():
    from referencing import Registry, Resource

    from structgen.errors import OutputValidationError
    from structgen.integrations.specs import prepare

    small = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "integer", "maximum": 5}
    registry = Registry().with_resource("urn:small", Resource.from_contents(small))
    schema = {"type": "object", "properties": {"a": {"$ref": "urn:small"}, "b": {"type": "array", "uniqueItems": True}},
              "required": ["a"], "additionalProperties": False}
    prepared = prepare(schema, _vocab(), lenient=True, registry=registry)  # uniqueItems: validated afterwards
    assert prepared.finish('{"a":3}') == {"a": 3}
    with pytest.raises(OutputValidationError, match="non-unique"):
        prepared.finish('{"a":3,"b":[1,1]}')
    m = prepared.grammar.matcher()
    assert not m.advance_bytes(b'{"a":6')


# ------------------------------------------------------------ the child


_IO_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request", "subprocess.Popen",
              "os.system")


def _allowed_roots() -> tuple[str, ...]:
    import tempfile

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(ROOT), tempfile.gettempdir(), "/dev/null"}
    return tuple(os.path.realpath(r) for r in roots)


def _child() -> None:
    """Run every case (or those named in argv), one JSON line each."""
    import structgen.integrations.transformers  # noqa: F401  (torch, kernel caches: before the hook watches)

    _vocab()
    roots = _allowed_roots()
    events: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event in _IO_EVENTS:
            events.append(f"{event} {str(args)[:120]}")
        elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if not path.startswith(roots):
                events.append(f"open {path}")

    sys.addaudithook(hook)
    names = sys.argv[1:] or list(CASES)
    for name in names:
        fn, _ = CASES[name]
        print(json.dumps({"start": name}), flush=True)
        events.clear()
        t = time.perf_counter()
        error = message = None
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which judges it
            error, message = type(e).__name__, str(e)[:500]
        seconds = time.perf_counter() - t
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(json.dumps({"name": name, "error": error, "message": message, "events": list(events),
                          "seconds": round(seconds, 2), "peak_mb": peak_mb}), flush=True)


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_CAP_S, CPU_CAP_S))


@pytest.fixture(scope="module")
def results() -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.test_hostile"], cwd=ROOT, capture_output=True, text=True,
        timeout=WALL_CAP_S, preexec_fn=_limit,
    )
    out: dict = {}
    started = None
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        if "start" in row:
            started = row["start"]
        else:
            out[row["name"]] = row
            started = None
    if started is not None:
        out[started] = {"crashed": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input(results, name):
    row = results.get(name)
    assert row is not None, "the child never reached this case"
    assert "crashed" not in row, row
    expected = CASES[name][1]
    assert row["error"] == expected, row
    if expected is not None:
        import structgen.errors

        assert issubclass(getattr(structgen.errors, expected), structgen.errors.StructgenError)
    assert row["events"] == [], row


if __name__ == "__main__":
    _child()
