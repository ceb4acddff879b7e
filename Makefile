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

DEMO_CONFIG := configs/ham10000-demo.yaml

# Three phases, each with its own progress bar; their wall-clock times are printed at the end.
demo: $(STAMP)
	@t0=$$(date +%s); \
	echo "[1/3] embedding the bundled images with the frozen encoder (cached for later runs)"; \
	$(BIN)/labelrefine embed $(DEMO_CONFIG) && t1=$$(date +%s) && \
	echo "[2/3] training every pipeline on the cached features (finished runs are kept)" && \
	$(BIN)/labelrefine run $(DEMO_CONFIG) && t2=$$(date +%s) && \
	echo "[3/3] writing the report" && \
	$(BIN)/labelrefine report runs/ham10000-demo && t3=$$(date +%s) && \
	echo "demo phase times: embedding $$((t1 - t0)) s, runs $$((t2 - t1)) s," \
	  "report $$((t3 - t2)) s, total $$((t3 - t0)) s"

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_embed.py
	$(BIN)/python benchmarks/bench_lnl.py
	$(BIN)/python benchmarks/bench_campaign.py

clean:
	rm -rf $(VENV) .cache runs
	@echo "the feature cache lives in the user cache folder: labelrefine cache clear empties it"
