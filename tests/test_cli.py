"""The ``structgen`` command line: help, exit codes, output. Mostly in-process
(``main([...])``, sharing the loaded default model); one real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from structgen.cli import EXIT_OK, EXIT_TRUNCATED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent

SCHEMA = {
    "type": "object",
    "properties": {"city": {"enum": ["Paris", "Rome", "Oslo"]}, "population_millions": {"type": "integer", "minimum": 0, "maximum": 40}},
    "required": ["city", "population_millions"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["compile", "--help"]])
def test_help_everywhere(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: structgen" in out and "Exit codes" in out


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["generate", "--regex", "a"])  # no prompt
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["generate", "--regex", "a", "--max-new-tokens", "0", "hi"])
    assert info.value.code == 2
    code, out, err = run(capsys, "generate", "--regex", "a", "--choice", "a,b", "hi")
    assert code == EXIT_USAGE and "exactly one spec" in err and out == ""
    code, out, err = run(capsys, "compile", "-q")
    assert code == EXIT_USAGE and "exactly one spec" in err


def test_compile_shows_what_the_spec_became(capsys):
    code, out, err = run(capsys, "compile", "--regex", "[0-9]{3}-(ab|cd)+", "-q")
    assert code == EXIT_OK, err
    assert "1 rule" in out and "byte classes" in out and "states built" in out
    assert "start ::= [0-9]{3}-(ab|cd)+" in out
    code, out, err = run(capsys, "compile", "--grammar", str(ROOT / "grammars" / "arithmetic.gbnf"), "--json", "-q")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert report["rules"] >= 2 and report["states_built"] >= 1 and "root" in report["rule_text"]


def test_compile_schema_file(capsys, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    code, out, err = run(capsys, "compile", str(path))
    assert code == EXIT_OK, err
    assert "not enforced:  nothing" in out
    assert "compiling" in err  # progress goes to stderr


def test_compile_lenient_lists_what_is_not_enforced(capsys, tmp_path):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "dependentSchemas": {"a": {"required": ["b"]}}}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    code, out, err = run(capsys, "compile", str(path), "-q")
    if code == EXIT_OK:  # the frontend enforces it: nothing to list
        assert "not enforced:  nothing" in out
        return
    assert code == EXIT_USAGE and "lenient" in err
    code, out, err = run(capsys, "compile", str(path), "--lenient", "-q")
    assert code == EXIT_OK, err
    assert "not enforced:  1" in out or "not enforced:  2" in out


def test_compile_errors_exit_2_with_a_message(capsys, tmp_path):
    code, out, err = run(capsys, "compile", "--regex", "(?=a)b", "-q")
    assert code == EXIT_USAGE and "look-ahead" in err and out == ""
    code, out, err = run(capsys, "compile", str(tmp_path / "missing.json"), "-q")
    assert code == EXIT_USAGE and "not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run(capsys, "compile", str(bad), "-q")
    assert code == EXIT_USAGE and "not valid JSON" in err
    code, out, err = run(capsys, "compile", "--schema", '{"type": "object", "minProperties": 3, "maxProperties": 1}', "-q")
    assert code == EXIT_USAGE and "error" in err
    code, out, err = run(capsys, "compile", "--grammar", str(tmp_path / "missing.gbnf"), "-q")
    assert code == EXIT_USAGE and "not found" in err
    code, out, err = run(capsys, "compile", "--schema", '{"type": "array", "uniqueItems": true}', "-q")
    assert code == EXIT_USAGE and "uniqueItems" in err and "--lenient" in err


def test_generate_json_schema_prints_valid_json(capsys, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    code, out, err = run(capsys, "generate", "--schema", str(path), "--max-new-tokens", "24", "--stats",
                         "A big European capital, as JSON.")
    assert code == EXIT_OK, err
    jsonschema.validate(json.loads(out), SCHEMA)
    assert "forward passes" in err


def test_generate_closes_objects_unless_open_objects(capsys):
    schema = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'
    code, out, err = run(capsys, "generate", "--schema", schema, "-q", "Where is the Louvre?")
    assert code == EXIT_OK, err
    assert set(json.loads(out)) == {"city"}
    # the schema's literal meaning: greedy SmolLM2 invents keys until the limit
    code, out, err = run(capsys, "generate", "--schema", schema, "--open-objects", "--max-new-tokens", "8", "-q",
                         "Where is the Louvre?")
    assert code == EXIT_TRUNCATED and not err.strip().splitlines()[-1].startswith('{"city"'), err


def test_generate_stream_prints_the_text_as_it_comes(capsys):
    code, out, err = run(capsys, "generate", "--stream", "--regex", "[0-9]{3}-[0-9]{4}", "-q", "A phone number:")
    assert code == EXIT_OK and re.fullmatch(r"[0-9]{3}-[0-9]{4}\n", out), (out, err)
    code, out, err = run(capsys, "generate", "--stream", "--regex", "[a-z]{30,40}", "--max-new-tokens", "2", "-q",
                         "Write a very long word.")
    assert code == EXIT_TRUNCATED and re.fullmatch(r"[a-z]+\n", out) and "cut off" in err
    code, out, err = run(capsys, "generate", "--stream", "--choice", "yes,no", "-q", "Is water wet?", "Is fire cold?")
    assert code == EXIT_USAGE and "several prompts" in err


def test_generate_pydantic_from_a_file(capsys, tmp_path):
    module = tmp_path / "sg_cli_models.py"
    module.write_text(
        "from pydantic import BaseModel, Field\n"
        "class Dog(BaseModel):\n"
        "    name: str = Field(max_length=10)\n"
        "    good: bool\n"
    )
    code, out, err = run(capsys, "generate", "--pydantic", f"{module}:Dog", "--max-new-tokens", "24", "-q",
                         "Describe a dog as JSON.")
    assert code == EXIT_OK, err
    value = json.loads(out)
    assert set(value) == {"name", "good"} and isinstance(value["good"], bool)
    code, out, err = run(capsys, "generate", "--pydantic", f"{module}:Cat", "-q", "hi")
    assert code == EXIT_USAGE and "no attribute" in err


def test_generate_choice_batch_one_line_per_prompt(capsys):
    code, out, err = run(capsys, "generate", "--choice", "yes,no", "-q", "Is water wet?", "Is fire cold?")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert len(lines) == 2 and set(lines) <= {"yes", "no"}


def test_generate_truncated_exits_3_with_the_partial_output(capsys):
    code, out, err = run(capsys, "generate", "--regex", "[a-z]{30,40}", "--max-new-tokens", "2", "-q",
                         "Write a very long word.")
    assert code == EXIT_TRUNCATED
    assert "cut off" in err and "--max-new-tokens" in err
    partial = err.strip().splitlines()[-1]
    assert re.fullmatch(r"[a-z]+", partial)


def test_real_entry_point_in_a_subprocess():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "structgen.cli", "generate", "--regex", "[0-9]{2}", "--max-new-tokens", "4", "Two digits:"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"[0-9]{2}\n", proc.stdout)
    assert "loading model" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "structgen.cli", "generate", "--regex", "(", "-q", "x"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    assert proc.returncode == 2 and "error" in proc.stderr and "Traceback" not in proc.stderr


def test_render_expr_marks_intersections():
    from structgen.cli import render_expr
    from structgen.grammar import ir

    e = ir.alt(ir.literal("x"), ir.intersect(ir.rep(ir.byte_ranges([(97, 98)])), ir.alt(ir.literal("ab"), ir.literal("c"))))
    assert render_expr(e) == "x|([a-b]*&(c|ab))"
