# Bindery — the commands people and CI use. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
SWIFT ?= swift
# Debian packages the build and tests need; installed only when missing.
APT_PACKAGES := libssl-dev libsqlite3-dev openssl sqlite3
BENCH_DIR := .build/bench

.PHONY: help deps build test bench bench-store bench-kernel clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## Install missing Debian packages (libssl-dev, libsqlite3-dev, ...).
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

build: deps ## Build everything (debug).
	$(SWIFT) build

test: deps ## Build and run every test.
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing

bench: bench-store bench-kernel ## Run every benchmark (not part of the tests).

bench-store: deps ## Durable writes/s: group commit vs one commit per write.
	$(SWIFT) build -c release --product bindery-bench
	mkdir -p $(BENCH_DIR)
	.build/release/bindery-bench store --writers 1,16,64 --seconds 3 --rounds 3 \
	  --scratch $(BENCH_DIR)/store --json $(BENCH_DIR)/store.json

bench-kernel: deps ## Bind+unbind ops/s on the simulated kernel and the executor's overhead.
	$(SWIFT) build -c release --product bindery-bench
	.build/release/bindery-bench kernel --operations 200000 --rounds 5

clean: ## Remove build products.
	rm -rf .build
