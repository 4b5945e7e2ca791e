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

# The main job: evaluate the requests in examples/ and print the verdicts, with kwctl when it is on
# PATH, else with the in-repo waPC host.
.PHONY: run
run:
	examples/run.sh

# The whole gate, as CI runs it on a fresh machine: what is cheap and most often wrong first.
.PHONY: test
test: deps fmt lint fuzz-check fixtures unit-tests e2e-tests

.PHONY: deps
deps:
	hack/install-test-deps.sh

# Every crate of the workspace: unit, property, differential, limits and metadata-consistency tests,
# and the sync job's tests on a real kube-apiserver and etcd (sync/tests/api_server.rs).
# policy-host on its own: built alone, it gets the dependency features that `cargo build -p
# policy-host` gets, so wasmtime is compiled once for its tests, `make run` and e2e-tests.
.PHONY: unit-tests
unit-tests:
	cargo test --workspace --exclude policy-host
	cargo test -p policy-host

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
