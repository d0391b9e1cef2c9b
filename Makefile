# cft-bounds: the README names `make test` and `make demo`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN ?= runs/wordnet-minilm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test demo demo-genres genres docs-results lab lint bench wordnet clean-runs floors

# torch is pinned to the CPU wheel in the same pip command as everything else, so the
# resolver never pulls a CUDA build; torchvision/timm are never installed.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[dev]'
	@touch $@

# the first step of a new checkout: .venv plus the editable install with the dev extras,
# no tests (measured 4.6 min on a shared 2-core machine from a local wheel mirror)
.PHONY: install
install: $(BIN)/.installed
	@echo "cft-bounds installed in $(VENV): . $(BIN)/activate"

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests

lint: $(BIN)/.installed
	$(BIN)/ruff check bounds cft tests bench

wordnet:
	@scripts/ensure-wordnet.sh

demo: $(BIN)/.installed wordnet
	$(BIN)/python -m cft run --preset wordnet-minilm --out $(RUN)
	$(BIN)/python -m bounds.check $(RUN) --split both --json $(RUN)/check.json --plot $(RUN)/check.png

# the multi-genre stream: five real corpora of different genres, one task each
GENRES_RUN ?= runs/genres-5
genres:
	@scripts/ensure-genres.sh

demo-genres: $(BIN)/.installed genres
	$(BIN)/python -m cft run --preset genres-5 --out $(GENRES_RUN)
	$(BIN)/python -m bounds.check $(GENRES_RUN) --split both --json $(GENRES_RUN)/check.json --plot $(GENRES_RUN)/check.png

# README.md and docs/results.md: every table and number from the committed results/ files
docs-results: $(BIN)/.installed
	$(BIN)/python scripts/docs_results.py

lab: $(BIN)/.installed
	CFT_RUN_DIR=$(abspath $(RUN)) $(BIN)/jupyter lab notebooks

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_bounds.py
	$(BIN)/python bench/bench_check.py

# every dependency at its floor (constraints/floors.txt) in a throwaway venv, then tests
floors:
	scripts/check_floors.sh

clean-runs:
	rm -rf runs
