# Two commands for a fresh clone: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,onnxruntime,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/labelrefine run configs/ham10000-demo.yaml
	$(BIN)/labelrefine report runs/ham10000-demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_embed.py
	$(BIN)/python benchmarks/bench_lnl.py
	$(BIN)/python benchmarks/bench_campaign.py

clean:
	rm -rf $(VENV) .cache runs
