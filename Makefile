# quorumkv: the two commands first (make run, make test); the long ones after.
# Every target bootstraps .venv on a bare machine; nothing is installed by hand.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SEEDS ?= 0:10000

.PHONY: run demo test verify verify-matrix bench bench-quick bench-components bench-deps lint clean \
	system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[server,test,bench]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Debian packages the integration tests use (redis-cli, redis-benchmark).
system-deps:
	@command -v redis-cli >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; \
	  else echo "redis-tools missing: run 'sudo apt-get install redis-tools'"; exit 1; fi; }
	@# iptables: quorumkv verify's partitions (as root; without it they fall back to routes).
	@command -v iptables >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null; }

# A local 3-node cluster of real processes (data under ./data); Ctrl-C stops it cleanly.
run: $(STAMP)
	$(VENV)/bin/quorumkv up --nodes 3

# The deterministic simulator's demo.
demo: $(STAMP)
	$(PY) -m quorumkv.sim.demo

test: $(STAMP) system-deps
	$(PY) -m pytest -m "not slow" -p no:cacheprovider

verify: $(STAMP)
	$(PY) -m quorumkv.sim --seeds $(SEEDS)
	$(PY) -m pytest -m slow -p no:cacheprovider
	$(MAKE) verify-matrix

# Semantic mutants (mutants/*.patch, budgets in mutants/manifest.toml): each breaks one rule of
# Raft or of the host's persist/send/apply order in a scratch copy of src/, and the simulator
# alone must catch it within its seed budget. Prints the table; fails on a stale patch or a
# mutant not caught. MUTANTS="002 014" runs only those (name prefixes).
.PHONY: mutants
mutants: $(STAMP)
	$(PY) mutants/run.py $(if $(MUTANTS),--only $(MUTANTS))

# quorumkv verify's full matrix: every fault kind with the register and set workloads, 60 s
# each, on real processes in network namespaces (root; else --loopback, process faults only).
# Runs land in verify-runs/matrix-<timestamp>/; the summary table is printed at the end.
verify-matrix: $(STAMP) system-deps
	$(VENV)/bin/quorumkv verify --matrix $$([ "$$(id -u)" = 0 ] || echo --loopback)

# What make bench compares against: etcd and Redis from Debian, PySyncObj in its own venv.
PYSYNCOBJ_VENV := bench/.venv-pysyncobj
bench-deps: system-deps
	@command -v etcd >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client redis-server redis-tools >/dev/null; \
	  else echo "missing: run 'sudo apt-get install etcd-server etcd-client redis-server redis-tools'"; exit 1; fi; }
	test -x $(PYSYNCOBJ_VENV)/bin/python || $(PYTHON) -m venv $(PYSYNCOBJ_VENV)
	$(PYSYNCOBJ_VENV)/bin/python -c 'import pysyncobj' 2>/dev/null || \
	  $(PYSYNCOBJ_VENV)/bin/pip install --quiet pysyncobj

# The comparative suite (bench/suite.py): results in bench/results/<date>.md/.json with plots,
# and the README's performance table. The full run takes about 50 minutes on 2 cores.
bench: $(STAMP) bench-deps
	$(PY) bench/suite.py

# A subset in under five minutes: bench/results/quick/, README untouched.
bench-quick: $(STAMP) bench-deps
	$(PY) bench/suite.py --quick

# The component benchmarks: Raft core, storage, one server, partitioning.
bench-components: $(STAMP) system-deps
	$(PY) bench/raft_core.py
	$(PY) bench/storage.py
	$(PY) bench/server.py
	$(PY) bench/cluster.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
