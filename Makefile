# cft-bounds: the README names `make test` and `make demo`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN ?= runs/wordnet-minilm
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test demo lab lint bench wordnet clean-runs floors

# torch is pinned to the CPU wheel in the same pip command as everything else, so the
# resolver never pulls a CUDA build; torchvision/timm are never installed.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0 -e '.[dev]'
	@touch $@

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests

lint: $(BIN)/.installed
	$(BIN)/ruff check bounds cft tests bench

wordnet:
	@scripts/ensure-wordnet.sh

demo: $(BIN)/.installed wordnet
	$(BIN)/python -m cft run --preset wordnet-minilm --out $(RUN)
	$(BIN)/python -m bounds.check $(RUN) --split both --json $(RUN)/check.json --plot $(RUN)/check.png

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
