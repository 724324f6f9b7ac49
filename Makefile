# quorumkv: the two commands first (make run, make test); the long ones after.
# Every target bootstraps .venv on a bare machine; nothing is installed by hand.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every dependency is pinned in requirements/*.txt (regenerate with requirements/update.sh);
# make run installs server.txt only, the other targets test.txt (server.txt and more): both are
# lock files (every package, transitive ones included, pinned ==). A stamp per lock file's
# content: a changed lock reinstalls, an unchanged one does nothing.
lock_sum = $(shell cat requirements/$(1).txt pyproject.toml | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-server-$(call lock_sum,server)
STAMP := $(VENV)/.installed-test-$(call lock_sum,test)
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check
SEEDS ?= 0:10000

.PHONY: run demo test verify verify-matrix bench bench-quick bench-components bench-deps lint clean \
	system-deps

# Pinned setuptools and wheel first, then the lock, then quorumkv itself with no resolution of
# its own (--no-deps) and no build environment fetched from the index (--no-build-isolation).
define install_lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) $$(grep -E '^(setuptools|wheel)==' requirements/$(1).txt)
	$(PIP_INSTALL) -r requirements/$(1).txt
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
endef

$(RUN_STAMP): requirements/server.txt pyproject.toml
	$(call install_lock,server)
	rm -f $(VENV)/.installed-server-*
	touch $(RUN_STAMP)

$(STAMP): requirements/test.txt pyproject.toml
	$(call install_lock,test)
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(RUN_STAMP)

# Debian packages the integration tests use (redis-cli, redis-benchmark).
system-deps:
	@command -v redis-cli >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; \
	  else echo "redis-tools missing: run 'sudo apt-get install redis-tools'"; exit 1; fi; }
	@# iptables: quorumkv verify's partitions (as root; without it they fall back to routes).
	@command -v iptables >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null; }

# A local 3-node cluster of real processes (data under ./data); Ctrl-C stops it cleanly.
run: $(RUN_STAMP)
	$(VENV)/bin/quorumkv up --nodes 3

# The deterministic simulator's demo.
demo: $(STAMP)
	$(PY) -m quorumkv.sim.demo

test: $(STAMP) system-deps
	$(PY) -m pytest -m "not slow" -p no:cacheprovider

# The sweep is the command line's, not a test's: it prints its coverage table, and at about
# 0.4 CPU s a seed 10,000 seeds outlast pytest's per-test timeout.
verify: $(STAMP)
	$(PY) -m quorumkv.sim --seeds $(SEEDS) --jobs 2
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
	  $(PYSYNCOBJ_VENV)/bin/pip install --quiet pysyncobj==0.3.17

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
