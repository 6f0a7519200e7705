# Quick start: `make demo` and `make test`. Each creates and fills .venv by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean objects

# The native tier's llvmlite (the `jit` extra) too, so the tests cover it; where it cannot be installed,
# everything else works and the native tests skip and say why.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e '.[dev,jit]' || echo "llvmlite could not be installed: the native tier is off"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/syscall_ebpf/syscall_ebpf/main.py --duration 3 --log-level warn

lint: $(STAMP)
	$(PY) -m ruff check tinyaya
	$(PY) -m mypy

test: $(STAMP) lint
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m tinyaya.sim_kernel.vm.compiled.bench_engines --output bench-results.json

# Rebuild every committed eBPF object (needs clang-19, llvm-19 and libbpf-dev; tests use the committed objects).
FIXTURE_DIRS := tests/fixtures/isa tests/fixtures/obj tests/fixtures/vm tests/fixtures/cli \
	tests/fixtures/tracing/src tests/fixtures/readme tests/linux/fixtures tests/verifier/fixtures/src
objects:
	for d in $(FIXTURE_DIRS); do $(MAKE) -C $$d || exit 1; done
	$(PYTHON) examples/syscall_ebpf/xtask/xtask.py build-ebpf

clean:
	rm -rf $(VENV) bench-results.json
