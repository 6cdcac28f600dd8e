# atfleet — the front door. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Builds share one target directory outside the clone, so CI and fresh clones do not rebuild from zero.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/atfleet-target
CARGO ?= cargo
VERSION ?= dev
REGISTRY ?= ghcr.io/atfleet

# Test tools installed from the registries by the targets that need them, kept outside the clone.
TOOLS_ROOT ?= $(HOME)/.cache/atfleet-cargo-tools
NEXTEST_VERSION ?= 0.9.151

.PHONY: help bench reliability test fmt-check clippy check-chart test-rust python-env fuzz fmt images e2e-kind nextest controlplane

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

test: fmt-check clippy check-chart test-rust ## Everything CI checks: formatting, clippy (warnings denied), chart checks, all tests

check-chart: ## Lint, render and validate the Helm chart, CRD copies, dashboards, alerts and Dockerfiles
	scripts/check-chart

fmt-check: ## Check formatting
	$(CARGO) fmt --all -- --check

fmt: ## Format the code
	$(CARGO) fmt --all

clippy: ## Lint every crate and target with warnings denied
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	scripts/check-module-cycles atctl/src atserver-image/src cluster/src directory-svc/src e2e/src node-agent/src operator/src protocol/src test-support/src

python-env: ## Create the Python virtualenv with Atsign's SDK (atsdk) used by interop tests
	@scripts/python-env >/dev/null

nextest: ## Install cargo-nextest (once, from crates.io) into ~/.cache/atfleet-cargo-tools
	@if ! "$(TOOLS_ROOT)/bin/cargo-nextest" nextest --version 2>/dev/null | grep -q "$(NEXTEST_VERSION)"; then \
	  echo "installing cargo-nextest $(NEXTEST_VERSION) into $(TOOLS_ROOT) (once)"; \
	  $(CARGO) install --locked --root "$(TOOLS_ROOT)" --version "$(NEXTEST_VERSION)" cargo-nextest; \
	fi

controlplane: ## Build the upstream Kubernetes control plane from controlplane/go.mod (once; cached in ~/.cache/atfleet-controlplane)
	@scripts/controlplane-build

# Tests run inside a throwaway PostgreSQL (scripts/with-postgres) and the upstream Kubernetes control plane
# with the node agent (scripts/with-controlplane), with the atsdk virtualenv and the packaging tools (helm from
# PyPI) ready. The node agent runs pods from the workspace binaries, so they are built first.
test-rust: python-env nextest controlplane ## All Rust tests (unit, integration, interop with atsdk, Kubernetes) against a throwaway Postgres and control plane
	$(CARGO) build --workspace --locked --bins
	scripts/with-postgres -- scripts/with-controlplane -- bash -c '\
	  set -euo pipefail; \
	  psql -Atc "select 1" >/dev/null; echo "throwaway postgres: select 1 ok ($$DATABASE_URL)"; \
	  echo "control plane: $$(kubectl --kubeconfig "$$ATFLEET_KUBECONFIG" version 2>/dev/null | grep Server)"; \
	  export ATFLEET_PYTHON=$$(scripts/python-env); \
	  export ATFLEET_TOOLS_BIN=$$(scripts/tools-env); \
	  $(CARGO) test --workspace --locked --doc; \
	  PATH="$(TOOLS_ROOT)/bin:$$PATH" $(CARGO) nextest run --workspace --locked --no-fail-fast'

.PHONY: demo
# The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl) is built once from
# its Go modules into ~/.cache/atfleet-controlplane; helm (for the chart's operator RBAC) comes from scripts/tools-env.
demo: ## atfleet on this machine (Go, PostgreSQL binaries): control plane, two Atsigns, onboarding, sharing, deletion; DEMO_FLAGS=--keep leaves it up
	$(CARGO) build --locked -p atserver -p atdirectory -p atfleet-operator -p atctl -p atfleet-e2e \
	  --bin atserver --bin atdirectory --bin atfleet-operator --bin atctl --bin atfleet-local
	controlplane=$$(scripts/controlplane-build) && tools=$$(scripts/tools-env) && \
	ATFLEET_CONTROLPLANE_BIN=$$controlplane ATFLEET_TOOLS_BIN=$$tools \
	  $(CARGO_TARGET_DIR)/debug/atfleet-local up $(DEMO_FLAGS)

# Release binaries; PostgreSQL for the atDirectory and the operator's registrations. The report goes to the
# repository's own target/bench whatever CARGO_TARGET_DIR says.
bench: ## Benchmarks against same-run baselines (release build; writes target/bench/report.{json,md} and PNGs)
	started=$$(date +%s); \
	$(CARGO) build --release --locked -p atserver -p atdirectory -p atfleet-operator -p atfleet-e2e \
	  --bin atserver --bin atdirectory --bin atfleet-operator --bin atfleet-bench; \
	controlplane=$$(scripts/controlplane-build); tools=$$(scripts/tools-env); \
	export ATFLEET_CONTROLPLANE_BIN=$$controlplane ATFLEET_TOOLS_BIN=$$tools; \
	built=$$(( $$(date +%s) - started )); \
	scripts/with-postgres -- $(CARGO_TARGET_DIR)/release/atfleet-bench run \
	  --bin-dir $(CARGO_TARGET_DIR)/release --out $(CURDIR)/target/bench \
	  --build-seconds $$built --limit-seconds $${BENCH_LIMIT_SECONDS:-900}

# Release binaries; every section starts what it needs (PostgreSQL clusters, the control plane) itself. The report
# goes to the repository's own target/reliability. RELIABILITY_FLAGS=--short runs the make-test sizes,
# RELIABILITY_FLAGS=--only=crash,hostile a subset.
reliability: ## Kill -9 cycles, directory outages, operator chaos, hostile network (long; writes target/reliability/report.{json,md})
	$(CARGO) build --release --locked -p atserver -p atdirectory -p atfleet-operator -p atfleet-node-agent -p atfleet-e2e \
	  --bin atserver --bin atdirectory --bin atfleet-operator --bin atfleet-node-agent --bin atfleet-reliability
	controlplane=$$(scripts/controlplane-build) && tools=$$(scripts/tools-env) && \
	ATFLEET_CONTROLPLANE_BIN=$$controlplane ATFLEET_TOOLS_BIN=$$tools \
	  $(CARGO_TARGET_DIR)/release/atfleet-reliability --bin-dir $(CARGO_TARGET_DIR)/release \
	  --out $(CURDIR)/target/reliability $(RELIABILITY_FLAGS)

# cargo-fuzz from crates.io, like cargo-nextest; the stable toolchain runs it (fuzz/README.md says how).
CARGO_FUZZ_VERSION ?= 0.13.2
FUZZ_SECONDS ?= 60
fuzz: ## Run every libFuzzer target FUZZ_SECONDS each (default 60) on the stable toolchain and print executions per target
	@if ! "$(TOOLS_ROOT)/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$(CARGO_FUZZ_VERSION)"; then \
	  echo "installing cargo-fuzz $(CARGO_FUZZ_VERSION) into $(TOOLS_ROOT) (once)"; \
	  CARGO_TARGET_DIR=$(HOME)/.cache/atfleet-fuzz-target/install \
	    $(CARGO) install --locked --root "$(TOOLS_ROOT)" --version "$(CARGO_FUZZ_VERSION)" cargo-fuzz; \
	fi
	PATH="$(TOOLS_ROOT)/bin:$$PATH" $(MAKE) -C fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

images: ## Build the three container images (needs a container engine: docker)
	docker build -f atserver-image/Dockerfile -t $(REGISTRY)/atserver:$(VERSION) --build-arg VERSION=$(VERSION) .
	docker build -f directory-svc/Dockerfile -t $(REGISTRY)/atdirectory:$(VERSION) --build-arg VERSION=$(VERSION) .
	docker build -f operator/Dockerfile -t $(REGISTRY)/atfleet-operator:$(VERSION) --build-arg VERSION=$(VERSION) .

e2e-kind: ## End to end on a kind cluster (needs docker, kind, kubectl, helm; not run in this repository's CI)
	deploy/kind/e2e.sh
