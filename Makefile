# Kubewarden policy conventions: policy.wasm, annotated-policy.wasm, test, e2e-tests, push.
SOURCE_FILES := $(shell find src -type f -name '*.rs')
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# Where cargo puts its output (hack/target-dir); evaluated only by the recipes that use it.
# Override with `make TARGET_DIR=...`.
TARGET_DIR ?= $(shell hack/target-dir)
# OCI registry path to push to, e.g. ghcr.io/my-org/policies (no default: pushing is deliberate).
REGISTRY ?=
POLICY_NAME := hook-sidecar-policy
CRATE_NAME := $(subst -,_,$(POLICY_NAME))

# `make push` or `make release` without REGISTRY stops here, before anything is built (also under
# `make -j`).
ifneq ($(filter push release,$(MAKECMDGOALS)),)
ifeq ($(strip $(REGISTRY)),)
$(error set REGISTRY, e.g. make push REGISTRY=ghcr.io/my-org/policies)
endif
endif

# cargo's release build, then wasm-opt (hack/build-module.sh): the module every test evaluates.
policy.wasm: $(SOURCE_FILES) Cargo.toml Cargo.lock hack/build-module.sh
	cp "$$(hack/build-module.sh)" policy.wasm

# The module as published: with the metadata and the README embedded. kwctl when it is on PATH (as
# a release does), else the in-repo host's annotate, which writes the same metadata
# (hack/verify-annotate.sh compares them), built as `make test` builds it (HOST_FEATURES).
KWCTL ?= $(shell command -v kwctl 2>/dev/null)
annotated-policy.wasm: policy.wasm policy-metadata.yml README.md
	@if [ -n "$(KWCTL)" ]; then \
	  echo "$(KWCTL) annotate ..."; \
	  "$(KWCTL)" annotate -m policy-metadata.yml -u README.md -o $@ policy.wasm; \
	else \
	  echo "no kwctl on PATH: policy-host annotate ..."; \
	  cargo build --quiet -p policy-host $(HOST_FEATURES) && \
	  "$(TARGET_DIR)/debug/policy-host" annotate -m policy-metadata.yml -u README.md -o $@ policy.wasm; \
	fi

# The published module within its budget (512 KiB): the README is embedded in it.
.PHONY: module-size
module-size: annotated-policy.wasm
	python3 hack/module-size.py policy.wasm annotated-policy.wasm --check \
	  --annotated-by $(if $(KWCTL),kwctl,policy-host)

# Regenerates the file (needs kwctl); tests/metadata_consistency.rs checks the committed one.
# The version is the metadata's io.kubewarden.policy.version (kwctl 1.35 deprecates --version),
# which that test keeps equal to Cargo.toml's.
# The install text is ours (hack/artifacthub-install.py): kwctl's suggests a manifest that would
# send every Pod of the cluster through the policy.
artifacthub-pkg.yml: policy-metadata.yml questions-ui.yml Cargo.toml hack/artifacthub-install.py
	kwctl scaffold artifacthub --metadata-path policy-metadata.yml \
	  --questions-path questions-ui.yml --output artifacthub-pkg.yml
	hack/artifacthub-install.py artifacthub-pkg.yml

# The main job: evaluate the requests in examples/ and print the verdicts, with kwctl when it is on
# PATH, else with the in-repo waPC host.
# The digest an allowedScripts entry takes: the SHA-256 of the file's bytes, which must be what
# the kubelet mounts (the ConfigMap's data value as written, or binaryData decoded): create the
# ConfigMap from this file (`kubectl create configmap --from-file`), unedited.
.PHONY: script-digest
script-digest:
	@test -n "$(FILE)" || { echo "usage: make script-digest FILE=path/to/script" >&2; exit 2; }
	@sha256sum <"$(FILE)" | cut -d' ' -f1

.PHONY: run
run:
	examples/run.sh

# The whole gate, as CI runs it on a fresh machine: what is missing installed, then every check
# once, what is cheap and most often wrong first.
.PHONY: test
test: deps fmt lint fuzz-check fixtures docs-check vendor-check chart-lint actionlint unit-tests \
  e2e-tests module-size image-tests

# Everything the tests need beyond the toolchains: the Debian packages (apt-get, with sudo unless
# root; CI runs this as its own step), then the Rust targets and the tools built from the Go module
# proxy (cached under ~/.cache/hook-sidecar-policy). Quiet when it is all there.
.PHONY: deps system-packages tools
deps: system-packages tools

system-packages:
	hack/install-system-packages.sh

tools:
	hack/install-test-deps.sh

# The docs: no hand-typed measurement, every relative link and anchor, the README's length.
.PHONY: docs-check
docs-check:
	hack/check-docs.py

# vendor/wasmtime-provider is the published crate with the edits of vendor/README.md, no other.
.PHONY: vendor-check
vendor-check:
	hack/vendor-wasmtime-provider.sh --check

# Every crate of the workspace: unit, property, differential, limits and metadata-consistency tests,
# and the sync job's tests on a real kube-apiserver and etcd (sync/tests/api_server/main.rs).
# policy-host on its own and with its `cluster` feature (HOST_FEATURES): built alone, it gets the
# dependency features that `cargo build -p policy-host $(HOST_FEATURES)` gets in e2e-tests, so
# wasmtime is compiled once for its tests and the end-to-end tests.
HOST_FEATURES := --features cluster,sigstore
.PHONY: unit-tests
unit-tests:
	cargo test --workspace --exclude policy-host
	cargo test -p policy-host $(HOST_FEATURES)

.PHONY: e2e-tests
e2e-tests:
	HOST_FEATURES="$(HOST_FEATURES)" e2e-tests/run-e2e.sh

# The performance tables of docs/performance.md, written by the run (hack/doc-block.py).
.PHONY: bench
bench:
	e2e-tests/bench.sh

# The policy in a real policy-server (in no registry: CONTRIBUTING.md says how to build it), with
# wrk, against a module that does nothing and one that only parses: throughput, latency and CPU
# per request as ratios, written to docs/performance-policy-server.md; PERF=1 adds how much of that
# CPU was in the module's own code (perf). Needs an idle machine.
.PHONY: bench-policy-server
bench-policy-server:
	@test -x "$(POLICY_SERVER)" || { echo "set POLICY_SERVER=/path/to/policy-server" >&2; exit 2; }
	POLICY_SERVER=$(POLICY_SERVER) KWCTL=$(KWCTL) PERF=$(PERF) e2e-tests/bench-policy-server.sh

# The fresh-instance probe: instructions (callgrind) and page faults per evaluation of the policy
# and the two floor modules, and where the policy's instructions go. Independent of other load.
.PHONY: probe
probe:
	e2e-tests/probe.sh

# The sync job alone: its unit tests and its tests on a real kube-apiserver and etcd.
.PHONY: sync-tests
sync-tests: deps
	cargo test -p hook-sidecar-sync

# Propagation latency over 100 Setting changes and the job's memory; large Settings, bursts and
# API-server crashes: written into sync/README.md, "Tests and numbers".
.PHONY: sync-bench
sync-bench: deps
	cargo build --quiet -p hook-sidecar-sync --profile host --benches
	hack/doc-block.py sync/README.md sync-propagation --by "make sync-bench" -- sync/benches/propagation.sh
	hack/doc-block.py sync/README.md sync-stress --by "make sync-bench" -- \
	  cargo bench --quiet -p hook-sidecar-sync --profile host --bench stress

# The chart: helm's strict lint with the default values and with every optional part on. The
# rendering itself is checked by the sync job's API-server tests (server-side dry run).
CHART := charts/hook-sidecar-policy
.PHONY: chart-lint
chart-lint: deps
	$$(hack/go-tool.sh helm) lint --strict $(CHART)
	$$(hack/go-tool.sh helm) lint --strict $(CHART) --set launcherPodPolicy.enabled=true \
	  --set sync.featureGate.enabled=true --set policy.contextAware.enabled=true \
	  --set monitoring.serviceMonitor.enabled=true --set monitoring.podMonitor.enabled=true
	$$(hack/go-tool.sh helm) lint --strict $(CHART) -f examples/harvester/gpu-values.yaml
	@# The schema refuses unknown keys: a misspelt value fails instead of being ignored.
	@if $$(hack/go-tool.sh helm) lint --strict $(CHART) --set sync.featureGates.enabled=true >/dev/null 2>&1; then \
	  echo "helm lint accepted the unknown value sync.featureGates.enabled" >&2; exit 1; fi
	@test -n "$$($$(hack/go-tool.sh helm) show readme $(CHART))" || { echo "helm show readme is empty" >&2; exit 1; }

# The GitHub workflows.
.PHONY: actionlint
actionlint: deps
	$$(hack/go-tool.sh actionlint) -no-color .github/workflows/*.yml

# The sync job's image (static musl binary, no Docker engine) as an OCI layout for this machine's
# arch, at $(TARGET_DIR)/sync-image.
.PHONY: sync-image
sync-image:
	hack/build-sync-image.sh layout $(TARGET_DIR)/sync-image

# The image opened and its binary run against a real kube-apiserver (sync/tests/image.rs).
.PHONY: image-tests
image-tests: deps sync-image
	SYNC_IMAGE_LAYOUT=$(TARGET_DIR)/sync-image cargo test -p hook-sidecar-sync --test image

# Builds and pushes everything an install needs to one registry path:
#   $(REGISTRY)/hook-sidecar-policy:v$(VERSION)   the policy module (kwctl push)
#   $(REGISTRY)/hook-sidecar-sync:v$(VERSION)     the sync job's image, for $(ARCHS) (crane)
#   oci://$(REGISTRY)/charts/hook-sidecar-policy  the chart, version $(VERSION) (helm push)
# then `helm install ... --set registry=$(REGISTRY)` uses them: no file to edit.
ARCHS ?= amd64
.PHONY: release
release: push
	hack/build-sync-image.sh push $(REGISTRY)/hook-sidecar-sync:v$(VERSION) $(ARCHS)
	rm -rf $(TARGET_DIR)/chart && mkdir -p $(TARGET_DIR)/chart
	$$(hack/go-tool.sh helm) package $(CHART) -d $(TARGET_DIR)/chart
	$$(hack/go-tool.sh helm) push $(TARGET_DIR)/chart/$(POLICY_NAME)-$(VERSION).tgz oci://$(REGISTRY)/charts
	@echo "install: helm install $(POLICY_NAME) oci://$(REGISTRY)/charts/$(POLICY_NAME) --version $(VERSION) -n cattle-kubewarden-system --set registry=$(REGISTRY)"

# Context-aware mode: the wasm module reading the Setting through the in-repo host's
# kubernetes/get_resource from a real kube-apiserver; its cost and time to enforcement.
.PHONY: context-aware-tests
context-aware-tests: deps
	cargo test -p policy-host $(HOST_FEATURES) --test context_aware

.PHONY: context-aware-bench
context-aware-bench: deps
	cargo build --quiet -p policy-host $(HOST_FEATURES) --profile host --benches
	hack/doc-block.py docs/context-aware.md context-aware-bench --by "make context-aware-bench" -- \
	  cargo bench --quiet -p policy-host $(HOST_FEATURES) --profile host --bench context_aware

# With a real kwctl and policy-server (in no registry: CONTRIBUTING.md says how to build them):
# the bats suite and `make run` through kwctl, the in-repo host's annotate against kwctl's, then
# the examples through policy-server.
.PHONY: verify-kubewarden
verify-kubewarden:
	@test -x "$(KWCTL)" && test -x "$(POLICY_SERVER)" || \
	  { echo "set KWCTL=/path/to/kwctl POLICY_SERVER=/path/to/policy-server" >&2; exit 2; }
	KWCTL=$(KWCTL) e2e-tests/run-e2e.sh
	KWCTL=$(KWCTL) HOST_FEATURES="$(HOST_FEATURES)" hack/verify-annotate.sh
	POLICY_SERVER=$(POLICY_SERVER) KWCTL=$(KWCTL) hack/verify-policy-server.sh

.PHONY: fmt
fmt:
	cargo fmt --all -- --check
	cargo fmt --manifest-path fuzz/Cargo.toml -- --check

# Natively with every feature (the host's `cluster`), and the wasm module's own code (context-aware
# mode's host calls are wasm-only); then
# one edition and one MSRV everywhere, which no locked dependency exceeds.
.PHONY: lint
lint:
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
	cargo clippy --target wasm32-wasip1 -p $(POLICY_NAME) -- -D warnings
	hack/check-msrv.py

# The workspace built with the declared MSRV's toolchain (installed by rustup; not part of `make
# test`, as it compiles every dependency once more).
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# `1.94` names the first release of 1.94 (rustup's `1.94` would be its latest patch release).
MSRV_TOOLCHAIN := $(if $(word 3,$(subst ., ,$(MSRV))),$(MSRV),$(MSRV).0)
.PHONY: msrv
msrv:
	rustup toolchain install $(MSRV_TOOLCHAIN) --profile minimal --target wasm32-wasip1
	cargo +$(MSRV_TOOLCHAIN) check --locked --workspace --all-targets
	cargo +$(MSRV_TOOLCHAIN) check --locked --target wasm32-wasip1 -p $(POLICY_NAME)

# The fuzz targets (fuzz/, outside the workspace) compiled and linted with the stable toolchain, so
# that an API change cannot break them unnoticed; running them needs nightly (cargo fuzz).
.PHONY: fuzz-check
fuzz-check:
	cargo clippy --manifest-path fuzz/Cargo.toml --locked --bins -- -D warnings

# test_data/generate.py writes exactly the fixtures on disk.
.PHONY: fixtures
fixtures:
	hack/check-fixtures.sh

.PHONY: push
push: annotated-policy.wasm
	kwctl push annotated-policy.wasm $(REGISTRY)/$(POLICY_NAME):v$(VERSION)

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
