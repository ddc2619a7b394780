"""README.md's examples run: every Python block and every ``structgen``
command line, with the default model, greedy, and what they return is checked.
README.md is parsed when the test runs, so the test follows it.

Conventions for whoever edits README.md:

* A fenced block runs when its info string is just ``python`` or ``sh``. A
  block whose info string has a second word (```` ```python vllm ````,
  ```` ```sh vllm ````) needs more than the default install (vLLM, a server,
  a GPU) and is left out; the word says what it needs.
* Each Python block runs alone, in a fresh namespace: it must be complete
  (imports, model, tokenizer, inputs). Every value ``structgen.generate``
  returns in it is validated against its spec.
* In ``sh`` blocks each ``structgen ...`` line runs as a command from the
  repository root: it must exit 0, and its output is checked (JSON against
  the schema it names, a regex result against the regex). Any other line
  must start with one of ``SKIPPED``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

import structgen
from structgen.integrations import generate as generate_module
from structgen.integrations.specs import Choice, Regex

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Lines of sh blocks that are not run, and why. Keep this short.
SKIPPED = {
    "make ": "builds .venv and runs everything; this test already runs inside it",
    "structgen bench ": "needs the team's MaskBench data (../shared) and takes minutes",
}

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


def _blocks(lang: str) -> list[tuple[int, str]]:
    """(line number, code) of each runnable block of ``lang``."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        if m.group(1).split() == [lang]:
            out.append((text.count("\n", 0, m.start()) + 1, m.group(2)))
    return out


def _command_lines() -> list[tuple[int, str]]:
    """(line number, command) of each sh line that runs; fails on a line
    that neither runs nor is in SKIPPED."""
    out = []
    for start, code in _blocks("sh"):
        pending = ""
        for i, line in enumerate(code.splitlines(), start + 1):
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            words = shlex.split(line, comments=True)
            if not words or any(line.startswith(p) for p in SKIPPED):
                continue
            assert words[0] == "structgen", f"README.md:{i}: {line!r} neither runs nor is in SKIPPED"
            out.append((i, line))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ Python


def _check_value(spec, prompt, value) -> None:
    """``value`` is what ``structgen.generate(spec, prompt)`` must return."""
    if isinstance(prompt, list) and not (prompt and isinstance(prompt[0], dict)):
        assert isinstance(value, list) and len(value) == len(prompt)
        for v in value:
            _check_value(spec, None, v)
        return
    if isinstance(spec, type):
        assert isinstance(value, spec)
    elif isinstance(spec, Regex):
        assert re.fullmatch(spec.pattern, value), (spec, value)
    elif isinstance(spec, Choice):
        assert value in spec.options
    elif isinstance(spec, (dict, bool, str)):
        jsonschema.validate(value, json.loads(spec) if isinstance(spec, str) else spec)


def _params(items) -> list:
    return [pytest.param(line, text, id=f"README.md:{line}") for line, text in items]


@pytest.mark.parametrize("line,code", _params(_blocks("python")))
def test_python_block(line, code, monkeypatch, capsys):
    seen = []
    real = generate_module.generate

    def checked(spec, prompt, **kwargs):
        value = real(spec, prompt, **kwargs)
        if not kwargs.get("return_details"):
            _check_value(spec, prompt, value)
        seen.append(spec)
        return value

    monkeypatch.setattr(generate_module, "generate", checked)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": f"readme_{line}"})
    if "print(" in code:
        assert capsys.readouterr().out.strip(), "the block prints nothing"
    assert seen or "structgen.generate(" not in code


# --------------------------------------------------------------- commands


def _structgen() -> list[str]:
    exe = Path(sys.executable).with_name("structgen")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "structgen.cli"]


@pytest.mark.parametrize("line,command", _params(_command_lines()))
def test_command_line(line, command):
    argv = shlex.split(command, comments=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(_structgen() + argv[1:], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert proc.returncode == 0, f"README.md:{line}: {command}\n{proc.stderr}"
    assert proc.stdout.strip()
    from structgen.cli import _read_schema, build_parser

    args = build_parser().parse_args(argv[1:])
    if args.command != "generate":
        return
    results = proc.stdout.splitlines()
    assert len(results) == len(args.prompts)
    schema = None
    if args.schema is not None:
        inline = args.schema.lstrip().startswith(("{", "["))
        schema = _read_schema(args.schema if inline else str(ROOT / args.schema))
    for out in results:
        if schema is not None:
            jsonschema.validate(json.loads(out), schema)
        elif args.pydantic is not None:
            json.loads(out)
        elif args.regex is not None:
            assert re.fullmatch(args.regex, out), out
        elif args.choice is not None:
            assert out in args.choice.split(",")


def test_the_readme_shows_the_examples_users_try_first():
    """A Pydantic model, a dict schema and a schema file on the command line,
    each run (and validated) by the tests above."""
    python = "\n".join(code for _, code in _blocks("python"))
    assert "(BaseModel)" in python and re.search(r"structgen\.generate\(\{", python)
    assert any(shlex.split(c)[1:3] == ["generate", "--schema"] for _, c in _command_lines())
