# The two commands of the README: `make lab` and `make test`. Everything else helps them.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
# Set-up is redone only when pyproject.toml (or the torch spec) changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)-$(shell echo '$(TORCH)' | sha1sum | cut -c1-8)
PYTEST_NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test lint format workbooks clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "bert-tutor needs Python 3.11 or newer, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, from TORCH, so that a CUDA user can choose the build (make lab TORCH=torch)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

lab: $(STAMP) workbooks
	$(BIN)/jupyter lab

test: $(STAMP) lint
	# MPLBACKEND=Agg would stop the kernels from showing plt.show() figures, which nbval compares
	env -u MPLBACKEND OMP_NUM_THREADS=2 $(BIN)/python -m pytest $(PYTEST_NBVAL) tests chapters

lint: $(STAMP)
	$(BIN)/ruff check bert_tutor tests benchmarks chapters
	$(BIN)/ruff format --check bert_tutor tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix bert_tutor tests benchmarks chapters
	$(BIN)/ruff format bert_tutor tests benchmarks

workbooks: $(STAMP)
	$(BIN)/bert-tutor workbooks

clean:
	rm -rf $(VENV) workbooks .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
