# Two commands: `make reproduce` and `make test`. Each builds .venv from nothing when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= results

.PHONY: reproduce report configs test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/factrecall reproduce all --scale quick --out $(OUT)

# Redraw every figure in the store and write report.md / report.html (no training).
report: $(STAMP)
	$(BIN)/factrecall report --store $(OUT)/results.db --out $(OUT) --scale quick

# Regenerate configs/ from reproduce.FIGURES (tests/test_configs.py fails until this is run after a new figure).
configs: $(STAMP)
	$(BIN)/factrecall reproduce all --write-configs configs

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks conftest.py
	$(BIN)/ruff format --check src tests benchmarks conftest.py
	$(BIN)/python -m pytest -q -n logical --dist loadscope --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks conftest.py

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_capacity.py
	$(BIN)/python benchmarks/bench_mlp_capacity.py
	$(BIN)/python benchmarks/bench_paper_mlp.py
	$(BIN)/python benchmarks/bench_dynamics.py
	$(BIN)/python benchmarks/bench_transformer.py
	$(BIN)/python benchmarks/bench_editing.py
	$(BIN)/python benchmarks/bench_draws.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
