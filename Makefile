# The two set-up commands of the README: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-demo demo test lint fmt bench

# Everything (the LLM judges compile llama-cpp-python once): what `make test` uses.
setup:
	bash scripts/setup.sh

# Only what the default cascade and the demo need (no llama.cpp build); a venv that has everything is reused.
setup-demo:
	EXTRAS=embedding,report,api bash scripts/setup.sh

demo: setup-demo
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

fmt: setup
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench
