# Two commands for a fresh clone: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

install: $(STAMP)

# constraints.txt: the exact versions the test suite passed with (pyproject.toml keeps ranges).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,onnxruntime,parquet,ray]'
	touch $(STAMP)

DEMO_CONFIG := configs/ham10000-demo.yaml

# One command embeds the images (skipped when cached) and runs every pipeline, each with its own
# progress bar, then the report; the phase times are printed at the end.
demo: $(STAMP)
	@t0=$$(date +%s); \
	echo "[1/2] embedding the bundled images (cached for later runs), then every pipeline"; \
	$(BIN)/labelrefine run $(DEMO_CONFIG) && t1=$$(date +%s) && \
	echo "[2/2] writing the report" && \
	$(BIN)/labelrefine report runs/ham10000-demo && t2=$$(date +%s) && \
	echo "demo phase times: data, features and runs $$((t1 - t0)) s (split above)," \
	  "report $$((t2 - t1)) s, total $$((t2 - t0)) s"

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
