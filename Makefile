# The two set-up commands of the README.
#
#   make demo   .venv: provision with the onnx extra, then `provision demo`
#   make test   .venv-test (its own, never .venv): the pinned torch pair and the dev extra,
#               then ruff, mypy and pytest; .ci/run runs exactly this
#
# Each environment is installed once: its stamp file (.venv/.installed, .venv-test/.installed)
# is remade, and the environment reinstalled, only when pyproject.toml or this Makefile is
# newer than it. `make PYTHON=python3.12 test` chooses the interpreter of a new environment
# (an existing one is kept: remove it with `make clean` first).

PYTHON ?= python3

# The only torch/torchvision pair PyPI has for torchvision; a CUDA build that also runs
# on the CPU (see "Test" in the README).
TORCH_PAIR = torch==2.14.1 torchvision==0.29.1

.PHONY: help demo test clean

help:
	@echo "make demo    create .venv, install provision with the onnx extra, run 'provision demo'"
	@echo "make test    create .venv-test, install the torch pair and the dev extra, run ruff, mypy, pytest"
	@echo "make clean   remove .venv and .venv-test"
	@echo "PYTHON=$(PYTHON) makes new environments (override: make PYTHON=python3.12 test)"

demo: .venv/.installed
	.venv/bin/provision demo

test: .venv-test/.installed
	.venv-test/bin/ruff check .
	.venv-test/bin/mypy
	.venv-test/bin/python -m pytest

.venv/.installed: pyproject.toml Makefile
	test -x .venv/bin/python || $(PYTHON) -m venv .venv
	.venv/bin/pip install -e '.[onnx]'
	touch $@

.venv-test/.installed: pyproject.toml Makefile
	test -x .venv-test/bin/python || $(PYTHON) -m venv .venv-test
	.venv-test/bin/pip install $(TORCH_PAIR)
	.venv-test/bin/pip install -e '.[dev]'
	touch $@

clean:
	rm -rf .venv .venv-test
