# Kubewarden policy conventions: policy.wasm, annotated-policy.wasm, test, e2e-tests, push.
SOURCE_FILES := $(shell find src -type f -name '*.rs')
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
TARGET_DIR := $(shell cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
REGISTRY ?=
POLICY_NAME := hook-sidecar-policy

policy.wasm: $(SOURCE_FILES) Cargo.toml Cargo.lock
	rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
	cargo build --target=wasm32-wasip1 --release -p hook-sidecar-policy
	cp $(TARGET_DIR)/wasm32-wasip1/release/hook_sidecar_policy.wasm policy.wasm

annotated-policy.wasm: policy.wasm policy-metadata.yml README.md
	kwctl annotate -m policy-metadata.yml -u README.md -o annotated-policy.wasm policy.wasm

artifacthub-pkg.yml: policy-metadata.yml Cargo.toml
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

# Unit, property, differential, limits and metadata tests, and the sync job on a real API server.
.PHONY: unit-tests
unit-tests:
	cargo test --workspace

.PHONY: e2e-tests
e2e-tests:
	e2e-tests/run-e2e.sh

.PHONY: bench
bench:
	e2e-tests/bench.sh

.PHONY: fmt
fmt:
	cargo fmt --all -- --check

.PHONY: lint
lint:
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: push registry-set
push: registry-set annotated-policy.wasm
	kwctl push annotated-policy.wasm $(REGISTRY)/$(POLICY_NAME):v$(VERSION)

registry-set:
	@test -n "$(REGISTRY)" || { echo "set REGISTRY, e.g. make push REGISTRY=ghcr.io/my-org/policies"; exit 1; }

.PHONY: clean
clean:
	cargo clean
	rm -f policy.wasm annotated-policy.wasm
