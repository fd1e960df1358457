# MIAD reproducibility bundle. `make reproduce` runs the pipeline, `make test` the tests;
# both build the virtual environment first when it is missing or the lock files changed.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
PROFILE ?=
# native: stages run in this venv; docker: each stage in its image from docker/images.lock (see `make images`)
RUNTIME ?= $(or $(MIAD_RUNTIME),native)
export MIAD_RUNTIME := $(RUNTIME)
export PATH := $(BIN):$(PATH)

.PHONY: setup reproduce publish test test-fast lint bench rehearse gpu-check images locks clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

SITE   := $(VENV)/lib/python3.11/site-packages
VENV_PATH_PTH := $(SITE)/miad_venv_path.pth

setup: $(VENV)/.installed $(VENV_PATH_PTH)  ## build the virtual environment from the lock files

# Every Python process of the venv puts the venv's bin/ first on PATH, so that an unactivated `.venv/bin/dvc repro`
# finds the `miad` its stages call, and `.venv/bin/miad` the `dvc` it calls.
$(VENV_PATH_PTH): $(VENV)/.installed
	printf '%s\n' 'import os, sys; d = os.path.dirname(sys.executable); p = os.environ.get("PATH", ""); p.split(os.pathsep)[0] == d or os.environ.__setitem__("PATH", d + os.pathsep + p)' > $@

$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "bpy 4.2 needs Python 3.11; set PYTHON=..."'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=23"
	$(BIN)/pip install --quiet -r requirements.lock -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

reproduce: setup  ## pull what the DVC remote holds (if any), restore assets, run the stale stages through `miad repro`, one per core (RUNTIME=docker: in the images), print Tables 3 and 4 and how many of the paper's findings hold
	$(if $(PROFILE),$(BIN)/miad profile $(PROFILE))
	$(BIN)/miad repro
	@cat results/tables/table3.md results/tables/table4.md
	@echo "figure: results/figures/figure2_samples.png"
	@echo "the paper's findings: $$(grep -o '[0-9]* of [0-9]* findings hold[^.]*' results/tables/claims.md | head -1) (each one: results/tables/claims.md)"

publish: setup  ## push data/, renders, models and results (and tracked weights) to the DVC remote
	$(BIN)/miad publish

test: setup lint  ## lint, then every test (slow ones included)
	$(BIN)/python -m pytest

test-fast: setup  ## the tests not marked slow
	$(BIN)/python -m pytest -m "not slow"

lint: setup  ## ruff on the code, the package's layers (import-linter), hadolint on the Dockerfiles
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/hadolint docker/render.Dockerfile docker/train.Dockerfile

bench: setup  ## benchmarks -> results/bench/*.json
	$(BIN)/python benchmarks/bench_metrics.py --out results/bench/metrics.json
	$(BIN)/python benchmarks/bench_bootstrap.py --out results/bench/bootstrap.json
	$(BIN)/python benchmarks/bench_pairing.py --out results/bench/pairing.json
	$(BIN)/python benchmarks/bench_methods.py --out results/bench/methods.json
	$(BIN)/python benchmarks/bench_portable.py --out results/bench/portable.json
	$(BIN)/python benchmarks/bench_render.py --out results/bench/render.json
	$(BIN)/python benchmarks/bench_pipeline.py --out results/bench/pipeline.json
	$(BIN)/python benchmarks/bench_fanout.py --out results/bench/fanout.json
	$(BIN)/python benchmarks/bench_warm.py --out results/bench/warm.json
	$(BIN)/python benchmarks/bench_launcher.py --out results/bench/launcher.json
	$(BIN)/python benchmarks/bench_containers.py --out results/bench/containers.json
	$(BIN)/python benchmarks/bench_fit_memory.py --out results/bench/fit_memory.json
	$(BIN)/python benchmarks/bench_patchcore_memory.py --out results/bench/patchcore_memory.json

rehearse: setup  ## the paper profile end to end on CPU in a scratch copy, image counts shrunk (REHEARSE_ARGS=...)
	$(BIN)/miad rehearse $(REHEARSE_ARGS)

gpu-check: setup  ## on a machine with an NVIDIA GPU: OptiX and CUDA renders, train twice, rates and peak memory
	$(BIN)/miad gpucheck

BASE ?=
images: setup  ## build the render and train images (needs a Docker engine; BASE=... overrides the pinned base), write docker/images.lock
	$(BIN)/miad images $(if $(BASE),--base $(BASE))

locks: setup  ## recompile docker/render.lock and docker/train.lock (hash-pinned, versions from requirements.lock)
	for image in render train; do \
	  $(BIN)/uv pip compile docker/$$image.in -c requirements.lock --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line --native-tls -q \
	    -o docker/$$image.lock || exit 1; \
	done

clean:  ## remove pipeline outputs (keeps the venv and the DVC cache)
	rm -rf renders models results
