# modelops developer entry points. Every target installs what it needs by itself:
# the virtualenv and Python packages, and the Go-built cluster binaries (cached by
# version under $(MODELOPS_CACHE), outside the clone).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export MODELOPS_CACHE ?= $(HOME)/.cache/modelops
include hack/versions.env
BIN := $(MODELOPS_CACHE)/bin/$(KUBE_VERSION)
HELM := $(BIN)/helm
PYTEST_ARGS ?=
TESTS ?= tests

.PHONY: help venv prometheus binaries gateways stores metrics-server flux cluster-up cluster-down manifests lint test test-unit test-integration demo bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[operator,services,dev,demo]'
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv with every Python dependency

prometheus: ## Build the Prometheus every test and the demo run (from its Go module) if missing
	hack/build-prometheus.sh >/dev/null

binaries: ## Build the cluster binaries (apiserver, etcd, kwok, helm, ...) if missing
	hack/build-binaries.sh

gateways: ## Build the Gateway API implementations the tests run (Envoy Gateway + Envoy, Traefik) if missing
	hack/build-gateways.sh

stores: venv ## Build the model stores the tests run (Versity S3 gateway, an MLflow registry venv) if missing
	hack/build-versity.sh
	hack/build-mlflow.sh

metrics-server: ## Build metrics-server, the resource metrics API the autoscaling tests' HPAs read, if missing
	hack/build-metrics-server.sh

flux: ## Build Flux's source-controller and kustomize-controller, the GitOps tool the GitOps test runs, if missing
	hack/build-flux.sh

cluster-up: binaries ## Start the local cluster (etcd, apiserver, controller-manager, scheduler, kwok)
	hack/cluster.sh up
	@echo "export KUBECONFIG=$$(hack/cluster.sh kubeconfig)"

cluster-down: ## Stop and remove the local cluster
	hack/cluster.sh down

manifests: binaries ## Re-render manifests/operator.yaml from the Helm chart
	manifests/render.sh $(HELM) > manifests/operator.yaml

lint: binaries ## helm lint, and check that manifests/ matches the chart
	$(HELM) lint --strict charts/modelops
	diff -u manifests/operator.yaml <(manifests/render.sh $(HELM))

# Only integration tests that run after the end-to-end ones use metrics-server and Flux
# (test_autoscaling, test_gitops), and their fixtures run the same build scripts, which wait
# on the build's lock. So `make test` builds them in the background at the lowest priority
# while the first tests run, and a cold machine compiles them (~7 min on 2 cores) in the
# tests' idle CPU time; on a warm machine the scripts return at once.
LATER_BUILDS := hack/build-metrics-server.sh hack/build-flux.sh

test: venv prometheus binaries gateways stores ## Run the whole test suite (unit, integration and end-to-end on the local cluster); TESTS=path narrows it to files
	@mkdir -p $(MODELOPS_CACHE)
	@echo "test: $(LATER_BUILDS) in the background (log: $(MODELOPS_CACHE)/later-builds.log)"
	@{ for build in $(LATER_BUILDS); do nice -n 19 $$build || echo "$$build failed: its test's fixture builds again"; \
	   done; } >$(MODELOPS_CACHE)/later-builds.log 2>&1 </dev/null &
	$(PY) -m pytest $(TESTS) $(PYTEST_ARGS)

.PHONY: e2e
e2e: venv prometheus binaries gateways stores ## End-to-end scenarios on the local cluster with real model servers (tests/e2e)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

.PHONY: e2e-kind
e2e-kind: venv binaries ## Scenarios 1 and 2 on kind against real pods, and a canary through Envoy Gateway (Docker: started, or installed from Debian, where it can be; skipped with a message where not)
	VENV=$(VENV) hack/e2e-kind.sh $(PYTEST_ARGS)

test-unit: venv ## Unit tests only (no cluster)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

demo: venv prometheus binaries ## A drifting canary rolled back by itself, live; timeline in build/demo/
	VENV=$(VENV) hack/demo.sh

bench: venv binaries ## Run the benchmarks (BENCH_ARGS=--quick for a short run); results go to bench/results/
	$(VENV)/bin/pip install --quiet -e '.[operator,services,dev,bench]'
	$(PY) -m bench.operator $(BENCH_ARGS)
	$(PY) -m bench.drift $(BENCH_ARGS)
	$(PY) -m bench.loop $(BENCH_ARGS)
	$(PY) -m bench.sources $(BENCH_ARGS)

clean: ## Remove the virtualenv (the binary cache stays)
	rm -rf $(VENV) .pytest_cache
