# Kubewarden policy conventions: policy.wasm, annotated-policy.wasm, test, e2e-tests, push.
SOURCE_FILES := $(shell find src -type f -name '*.rs')
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# Where cargo puts its output (honours CARGO_TARGET_DIR and .cargo/config.toml); evaluated only
# by the recipes that use it. Override with `make TARGET_DIR=...`.
TARGET_DIR ?= $(shell cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# OCI registry path to push to, e.g. ghcr.io/my-org/policies (no default: pushing is deliberate).
REGISTRY ?=
POLICY_NAME := hook-sidecar-policy
CRATE_NAME := $(subst -,_,$(POLICY_NAME))

# `make push` without REGISTRY stops here, before anything is built (also under `make -j`).
ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(strip $(REGISTRY)),)
$(error set REGISTRY, e.g. make push REGISTRY=ghcr.io/my-org/policies)
endif
endif

policy.wasm: $(SOURCE_FILES) Cargo.toml Cargo.lock
	rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
	cargo build --target=wasm32-wasip1 --release -p $(POLICY_NAME)
	cp $(TARGET_DIR)/wasm32-wasip1/release/$(CRATE_NAME).wasm policy.wasm

annotated-policy.wasm: policy.wasm policy-metadata.yml README.md
	kwctl annotate -m policy-metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

# Regenerates the file (needs kwctl); tests/metadata_consistency.rs checks the committed one.
artifacthub-pkg.yml: policy-metadata.yml questions-ui.yml Cargo.toml
	kwctl scaffold artifacthub --metadata-path policy-metadata.yml --version $(VERSION) \
	  --questions-path questions-ui.yml --output artifacthub-pkg.yml

# The main job: evaluate the requests in examples/ and print the verdicts.
.PHONY: run
run:
	examples/run.sh

# The whole suite, as CI runs it on a fresh machine.
.PHONY: test
test: deps unit-tests e2e-tests

.PHONY: deps
deps:
	hack/install-test-deps.sh

# Every crate of the workspace: unit, property, differential, limits and metadata-consistency tests,
# and the sync job's tests on a real kube-apiserver and etcd (sync/tests/api_server.rs).
.PHONY: unit-tests
unit-tests:
	cargo test --workspace

.PHONY: e2e-tests
e2e-tests:
	e2e-tests/run-e2e.sh

.PHONY: bench
bench:
	e2e-tests/bench.sh

# The sync job alone: its unit tests and its tests on a real kube-apiserver and etcd.
.PHONY: sync-tests
sync-tests: deps
	cargo test -p hook-sidecar-sync

# Propagation latency over 100 Setting changes and the job's memory (README, "The sync job").
.PHONY: sync-bench
sync-bench: deps
	cargo bench -p hook-sidecar-sync --profile host --bench propagation

# Context-aware mode: the wasm module reading the Setting through the in-repo host's
# kubernetes/get_resource from a real kube-apiserver; its cost and time to enforcement.
.PHONY: context-aware-tests
context-aware-tests: deps
	cargo test -p policy-host --test context_aware

.PHONY: context-aware-bench
context-aware-bench: deps
	cargo bench -p policy-host --profile host --bench context_aware

.PHONY: fmt
fmt:
	cargo fmt --all -- --check

.PHONY: lint
lint:
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: push
push: annotated-policy.wasm
	kwctl push annotated-policy.wasm $(REGISTRY)/$(POLICY_NAME):v$(VERSION)

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
