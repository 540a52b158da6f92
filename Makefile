# Bindery — the commands people and CI use. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
SWIFT ?= swift
# Debian packages the build and tests need; installed only when missing.
APT_PACKAGES := libssl-dev libsqlite3-dev openssl sqlite3 curl systemd
BENCH_DIR := .build/bench

FUZZ_DIR := .build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_FLAGS := --product bindery-fuzz --scratch-path $(FUZZ_DIR) -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld

.PHONY: help deps serve build test deb deb-check unit-check quickstart-check contract-check contract-live kernel-test unit-test fuzz-build fuzz fuzz-smoke bench bench-store bench-kernel bench-reconcile bench-http bench-audit bench-api clean

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# A recipe line that installs those of the Debian packages $(1) that are missing (apt-get,
# through sudo unless root). Every target that needs packages uses it.
install_missing = @missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

deps: ## Install missing Debian packages (libssl-dev, libsqlite3-dev, ...).
	$(call install_missing,$(APT_PACKAGES))

serve: deps ## Build and run `bindery serve` on its defaults (./bindery-data, 127.0.0.1:8443, kernel auto).
	$(SWIFT) build --product bindery
	.build/debug/bindery serve

build: deps ## Build everything (debug).
	$(SWIFT) build

test: contract-check unit-check fuzz-smoke quickstart-check kernel-test contract-live unit-test deb-check ## Build and run every test (contract, fuzzing, quick start, real kernels in QEMU, schemathesis and sslyze, unit and end-to-end, the Debian package).

VENV := .build/venv

$(VENV)/bin/openapi-spec-validator:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q openapi-spec-validator==0.9.0

# The fuzzing in make test is a smoke run (15 s per target, keeping make test under 30 minutes
# on 2 cores); make fuzz runs long.
test: FUZZ_SECONDS = 15

contract-check: $(VENV)/bin/openapi-spec-validator ## Validate openapi.yaml as an OpenAPI 3.1 document.
	$(VENV)/bin/openapi-spec-validator openapi.yaml

contract-live: deps $(VENV)/bin/openapi-spec-validator ## schemathesis (all phases, >= 5,000 cases) and sslyze (Mozilla intermediate) against a live bindery serve.
	$(SWIFT) build --product bindery
	Tests/Contract/run.sh

kernel-test: deps ## Run the executor and the daemon on real kernels in QEMU: Debian 6.1 and 6.12 (type1), and a 6.12 with CONFIG_IOMMUFD built once from linux-source-6.12 (iommufd).
	$(call install_missing,qemu-system-x86 busybox-static cpio kmod xz-utils)
	$(SWIFT) build --product bindery
	$(SWIFT) build --product bindery-bench
	Tests/Kernel/run.sh

unit-check: deps ## systemd-analyze verify packaging/systemd/bindery.service (any warning fails; deb-check verifies it again with its man page).
	$(SWIFT) build --product bindery
	sed "s#/usr/bin/bindery#$(CURDIR)/.build/debug/bindery#" packaging/systemd/bindery.service > .build/bindery.service
	@out=$$(systemd-analyze verify --man=no .build/bindery.service 2>&1); if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "bindery.service: verified"

quickstart-check: deps ## Run the README quick start literally: make serve, then the curl line it prints.
	Tests/QuickStart/check.sh

unit-test: deps ## Build and run the Swift test suites.
	$(SWIFT) build --build-tests
	.build/debug/bindery-fuzz Tests/Fuzz/corpus/http
	BINDERY_FUZZ_TARGET=bind .build/debug/bindery-fuzz Tests/Fuzz/corpus/bind
	$(SWIFT) test --skip-build --disable-swift-testing

fuzz-build: deps ## Build the libFuzzer target (SwiftPM also links the plugin tool with the fuzzer flags; that failure is harmless and logged).
	@$(SWIFT) build $(FUZZ_FLAGS) > $(FUZZ_DIR).log 2>&1 || { cat $(FUZZ_DIR).log; exit 1; }
	@test -x $(FUZZ_DIR)/debug/bindery-fuzz || { cat $(FUZZ_DIR).log; exit 1; }

fuzz-smoke: fuzz-build ## Fuzz the HTTP parser and the bind decoder for FUZZ_SECONDS each (default 30).
	@for target in http bind; do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$target $(FUZZ_DIR)/artifacts; \
	  cp Tests/Fuzz/corpus/$$target/* $(FUZZ_DIR)/corpus/$$target/; \
	  echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
	  rc=0; BINDERY_FUZZ_TARGET=$$target $(FUZZ_DIR)/debug/bindery-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$target- -print_final_stats=1 $(FUZZ_DIR)/corpus/$$target \
	    > $(FUZZ_DIR)/$$target.log 2>&1 || rc=$$?; \
	  grep -E "^(Done|stat::number_of_executed_units)" $(FUZZ_DIR)/$$target.log || true; \
	  if [ $$rc -ne 0 ]; then tail -40 $(FUZZ_DIR)/$$target.log; echo "fuzzer found a crash in $$target: see $(FUZZ_DIR)/artifacts"; exit 1; fi; \
	done

fuzz: ## Fuzz for longer (FUZZ_SECONDS=600 by default here).
	$(MAKE) fuzz-smoke FUZZ_SECONDS=$${FUZZ_SECONDS:-600}

bench: bench-store bench-kernel bench-reconcile bench-http bench-audit ## Run every benchmark (not part of the tests).

bench-store: deps ## Durable writes/s: group commit vs one commit per write.
	$(SWIFT) build -c release --product bindery-bench
	mkdir -p $(BENCH_DIR)
	.build/release/bindery-bench store --writers 1,16,64 --seconds 3 --rounds 3 \
	  --scratch $(BENCH_DIR)/store --json $(BENCH_DIR)/store.json

bench-kernel: deps ## Bind+unbind ops/s on the simulated kernel and the executor's overhead.
	$(SWIFT) build -c release --product bindery-bench
	.build/release/bindery-bench kernel --operations 200000 --rounds 5

bench-reconcile: deps ## Time for 10,000 bindings to go from Pending to Bound on the simulated kernel, both binding paths (5 runs each).
	$(SWIFT) build -c release --product bindery-bench
	@for host in type1-nesting iommufd; do for run in 1 2 3 4 5; do rm -rf $(BENCH_DIR)/reconcile; \
	  .build/release/bindery-bench reconcile --data-dir $(BENCH_DIR)/reconcile --bindings 10000 --simulated-host $$host | tail -1; done; done

bench-http: deps ## HTTPS keep-alive req/s, full handshakes/s and idle-connection memory against nginx.
	@command -v nginx >/dev/null || { sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq nginx-light; \
	  $$sudo systemctl stop nginx 2>/dev/null || $$sudo service nginx stop 2>/dev/null || true; }
	$(SWIFT) build -c release --product bindery-bench
	$(SWIFT) build -c release --product bindery-load
	python3 Tests/Bench/http_bench.py

# What building and checking the Debian package needs beyond APT_PACKAGES.
DEB_PACKAGES := dpkg-dev lintian man-db binutils python3

deb-deps: deps
	$(call install_missing,$(DEB_PACKAGES))

deb: deb-deps ## Build .build/deb/bindery_<version>_amd64.deb (release, Swift runtime linked statically; man page, completions, unit, /etc/bindery/config.json).
	packaging/build-deb.sh .build/deb

deb-check: deb-deps ## Build the package and check it: lintian (no errors), its files, --version, serve on the packaged config, systemd-analyze verify, man -l, install/upgrade/remove/purge.
	Tests/Package/check.sh

bench-audit: deps ## The audit history at 1,000,000 events: each filter's page latency and req/s, the NDJSON export (events/s, server RSS), verification.
	$(SWIFT) build -c release --product bindery
	$(SWIFT) build -c release --product bindery-bench
	$(SWIFT) build -c release --product bindery-load
	python3 Tests/Bench/audit_bench.py

bench-api: deps ## The API through Bindery's transport vs Hummingbird 2 (Tests/Bench/HummingbirdPeer) on the same handlers: req/s, latency, CPU/req; a walk through every page of WALK_VMS (20,000) VMs; then WRITES (1,000,000) creates and the RSS after.
	$(SWIFT) build -c release --product bindery
	$(SWIFT) build -c release --product bindery-bench
	$(SWIFT) build -c release --product bindery-load
	$(SWIFT) build -c release --package-path Tests/Bench/HummingbirdPeer
	python3 Tests/Bench/api_bench.py

clean: ## Remove build products.
	rm -rf .build .build-deb $(FUZZ_DIR) $(FUZZ_DIR).log
