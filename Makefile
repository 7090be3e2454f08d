# Two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the CPU build of torch, then graphkit (editable, with its
# dev extra; this compiles the C++ core in cpp/ when a C++ compiler is present).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.graphkit-installed
TORCH_VERSION ?= 2.13.0
PYTEST_ARGS ?=
# Tests, notebooks and benchmarks read the shared datasets from here when it exists.
ifneq ($(wildcard ../shared/data),)
export GRAPHKIT_DATA ?= $(abspath ../shared/data)
endif

.PHONY: bootstrap demo test test-all lint bench-quick clean

bootstrap: $(STAMP)

$(STAMP): pyproject.toml CMakeLists.txt $(wildcard cpp/*.cpp cpp/*.hpp cpp/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: bootstrap
	$(VENV)/bin/graphkit demo

test: bootstrap
	$(PY) -m pytest tests notebooks --nbmake -q $(PYTEST_ARGS)

test-all: bootstrap
	$(PY) -m pytest tests notebooks --nbmake -q -m '' $(PYTEST_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check .

clean:
	rm -rf build $(VENV)
