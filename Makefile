# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the CPU build of torch, then graphkit (editable, with its
# dev extra; this compiles the C++ core in cpp/ when a C++ compiler is present).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphkit-installed
TORCH_VERSION ?= 2.13.0
# The slow parity tests run the reference gradco package (numpy < 2) in an interpreter of its own.
PEER_VENV ?= /tmp/gradco-venv
PYTEST_ARGS ?=
# Test processes (pytest-xdist; whole files per process, so a file's tests keep their order).
# Each test process uses one torch thread (tests/conftest.py); TEST_WORKERS=0 runs in this one.
TEST_WORKERS ?= 2
# Tests, notebooks and benchmarks read the shared datasets from here when it exists.
ifneq ($(wildcard ../shared/data),)
export GRAPHKIT_DATA ?= $(abspath ../shared/data)
endif

.PHONY: bootstrap demo test test-all lint clean

bootstrap: $(STAMP)

# An interrupted bootstrap can leave a venv without pip: it is created again then.
$(STAMP): pyproject.toml CMakeLists.txt $(wildcard cpp/*.cpp cpp/*.hpp cpp/*.h)
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: bootstrap
	$(VENV)/bin/graphkit demo

test: bootstrap
	$(PY) -m pytest tests notebooks --nbmake -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-all: bootstrap $(PEER_VENV)/bin/python
	GRAPHLETS_PEER_PYTHON=$(PEER_VENV)/bin/python $(PY) -m pytest tests notebooks --nbmake -q -m '' -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

$(PEER_VENV)/bin/python:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q "numpy<2" scipy gradco orbit-count

# benchmarks/fastrp.py's PecanPy node2vec peer (its nptyping holds numpy < 2): fastrp.py's default
# --peer-python when this interpreter exists (a failed install leaves no half-made venv behind).
PECANPY_VENV ?= /tmp/pecanpy-venv
.PHONY: pecanpy-venv
pecanpy-venv: $(PECANPY_VENV)/bin/python

$(PECANPY_VENV)/bin/python:
	$(PYTHON) -m venv $(PECANPY_VENV)
	$(PECANPY_VENV)/bin/pip install -q "numpy<2" scipy pecanpy || { rm -rf $(PECANPY_VENV); exit 1; }

lint: bootstrap
	$(VENV)/bin/ruff check .

clean:
	rm -rf build $(VENV)
