#!/usr/bin/env bats
# Signed sidecar images (`signatures`) on real signatures in a real registry: go-containerregistry's
# registry served on loopback (`crane registry serve`), images pushed there and signed by cosign
# with keys made here, and the policy run by `kwctl run` (policy-evaluator's oci/v2/verify) or by
# the in-repo host (its `sigstore` feature, on the same sigstore crate), both told by a sources file
# that the loopback registry speaks plain HTTP (e2e-tests/signed-registry.bash). The registry's
# request log shows which evaluations reached it.

load helpers
load signed-registry

setup_file() {
  export SIGNED_REGISTRY_DIR=$BATS_FILE_TMPDIR
  local dir=$BATS_FILE_TMPDIR
  start_signed_registry
  generate_keys a b
  for image in signed unsigned other-key both moved moved-to shim; do
    push_image "$image"
  done
  sign_image a "$REGISTRY/hooks/signed:v1" -a env=prod
  sign_image a "$REGISTRY/hooks/shim:v1"
  sign_image b "$REGISTRY/hooks/other-key:v1"
  sign_image a "$REGISTRY/hooks/both:v1"
  sign_image b "$REGISTRY/hooks/both:v1"
  # Signed, then the tag moved to an image nobody signed.
  sign_image a "$REGISTRY/hooks/moved:v1"
  "$CRANE" copy --insecure "$REGISTRY/hooks/moved-to:v1" "$REGISTRY/hooks/moved:v1" >/dev/null 2>&1
  # A certificate for the signer's key, issued by a CA made here; and another CA.
  certificate_authority ca
  certificate_authority other-ca
  push_image certified
  sign_image signer "$REGISTRY/hooks/certified:v1" --certificate "$dir/signer.crt" \
    --certificate-chain "$dir/ca.pem"
}

# certificate_authority NAME: a self-signed CA (NAME.pem, NAME.key); for `ca`, also the signer's
# key (signer.key, imported into cosign) and its code-signing certificate (signer.crt).
certificate_authority() {
  local dir=$BATS_FILE_TMPDIR
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/$1.key" \
    -out "$dir/$1.pem" -subj "/CN=$1" -days 2 -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign 2>/dev/null
  [[ $1 == ca ]] || return 0
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$dir/signer.pem"
  openssl req -new -key "$dir/signer.pem" -subj /CN=hooks-signer -out "$dir/signer.csr"
  printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectAltName=email:signer@example.com\n' \
    >"$dir/signer.ext"
  openssl x509 -req -in "$dir/signer.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -out "$dir/signer.crt" -extfile "$dir/signer.ext" 2>/dev/null
  (cd "$dir" && "$COSIGN" import-key-pair --key signer.pem --output-key-prefix signer >/dev/null 2>&1)
}

teardown_file() {
  stop_signed_registry
}

# settings SIGNATURES [EXTRA]: the hooks repository allowed, the requirements SIGNATURES (jq, with
# $a and $b the public keys, $certificate the signer's certificate, $ca and $other_ca the CAs).
settings() {
  local extra=${2:-"{}"} dir=$BATS_FILE_TMPDIR
  jq -nc --arg registry "$REGISTRY" --rawfile a "$dir/a.pub" --rawfile b "$dir/b.pub" \
    --rawfile certificate "$dir/signer.crt" --rawfile ca "$dir/ca.pem" \
    --rawfile other_ca "$dir/other-ca.pem" \
    "{allowedImages: [\"\\(\$registry)/hooks/*\"], signatures: $1} + $extra"
}

by_key_a() { settings '[{image: "\($registry)/hooks/*", pubKeys: [$a]}]' "$@"; }

# kwrun_signed REQUEST SETTINGS: the evaluation, with the sources file.
kwrun_signed() {
  kwrun --sources-path "$BATS_FILE_TMPDIR/sources.yml" --request-path "$1" --settings-json "$2"
}

vm_running() {
  vm_with_sidecars "[{\"image\": \"$1\", \"args\": [\"--version\", \"v1alpha3\"]}]"
}

# The launcher Pod KubeVirt renders for a VM with the sidecar image $1.
launcher_pod_running() {
  local request="$BATS_TEST_TMPDIR/pod-$RANDOM.json"
  jq --arg image "$1" \
    '.object.spec.containers |= map(if .name == "hook-sidecar-0" then .image = $image else . end)
     | .object.metadata.annotations["hooks.kubevirt.io/hookSidecars"] =
       ([{image: $image, args: ["--version", "v1alpha3"]}] | tojson)' \
    "$TEST_DATA/launcher-pod-create-gpu-hook.json" >"$request"
  echo "$request"
}

registry_requests() { wc -l <"$BATS_FILE_TMPDIR/registry.log"; }

@test "an image signed by the key runs, at the VM and at its launcher Pod" {
  kwrun_signed "$(vm_running "$REGISTRY/hooks/signed:v1")" "$(by_key_a)"
  assert_allowed
  kwrun_signed "$(launcher_pod_running "$REGISTRY/hooks/signed:v1")" "$(by_key_a)"
  assert_allowed
}

@test "the signed image by its digest runs" {
  local digest
  digest=$("$CRANE" digest --insecure "$REGISTRY/hooks/signed:v1")
  kwrun_signed "$(vm_running "$REGISTRY/hooks/signed@$digest")" "$(by_key_a)"
  assert_allowed
}

@test "an unsigned image is refused, at the VM and at its launcher Pod" {
  local image="$REGISTRY/hooks/unsigned:v1"
  kwrun_signed "$(vm_running "$image")" "$(by_key_a)"
  assert_rejected "image \"$image\" ($image): signatures[0] (pubKeys): not verified" \
    "no signatures found for image"
  kwrun_signed "$(launcher_pod_running "$image")" "$(by_key_a)"
  assert_rejected "signatures[0] (pubKeys): not verified" "no signatures found for image"
}

@test "an image signed by another key is refused" {
  kwrun_signed "$(vm_running "$REGISTRY/hooks/other-key:v1")" "$(by_key_a)"
  assert_rejected "signatures[0] (pubKeys): not verified" "Image verification failed: missing signatures"
}

@test "a tag moved to an unsigned image after signing is refused" {
  kwrun_signed "$(vm_running "$REGISTRY/hooks/moved:v1")" "$(by_key_a)"
  assert_rejected "signatures[0] (pubKeys): not verified" "no signatures found for image"
}

@test "annotations the signature lacks are refused; those it has pass" {
  local image="$REGISTRY/hooks/signed:v1"
  kwrun_signed "$(vm_running "$image")" \
    "$(settings '[{image: "\($registry)/hooks/*", pubKeys: [$a], annotations: {env: "prod"}}]')"
  assert_allowed
  kwrun_signed "$(vm_running "$image")" \
    "$(settings '[{image: "\($registry)/hooks/*", pubKeys: [$a], annotations: {env: "dev"}}]')"
  assert_rejected "signatures[0] (pubKeys): not verified" "missing signatures"
}

@test "every requirement that governs the image must be met" {
  local two='[{image: "\($registry)/hooks/*", pubKeys: [$a]}, {image: "\($registry)/hooks/*", pubKeys: [$b]}]'
  kwrun_signed "$(vm_running "$REGISTRY/hooks/both:v1")" "$(settings "$two")"
  assert_allowed
  kwrun_signed "$(vm_running "$REGISTRY/hooks/signed:v1")" "$(settings "$two")"
  assert_rejected "signatures[1] (pubKeys): not verified"
  [[ $(jq -r .status.message <<<"$output") != *"signatures[0]"* ]]
}

@test "the sidecar-shim is verified as the image KubeVirt runs for it" {
  local shim="$REGISTRY/hooks/shim:v1" entry
  entry='[{"args": ["--version", "v1alpha3"], "configMap": {"name": "hooks", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}]'
  kwrun_signed "$(vm_with_sidecars "$entry")" \
    "$(by_key_a "{sidecarShimImage: \"$shim\", allowConfigMap: true}")"
  assert_allowed
  kwrun_signed "$(vm_with_sidecars "$entry")" \
    "$(by_key_a "{sidecarShimImage: \"$REGISTRY/hooks/unsigned:v1\", allowConfigMap: true}")"
  assert_rejected "no image (KubeVirt's sidecar-shim) ($REGISTRY/hooks/unsigned:v1): signatures[0] (pubKeys): not verified"
}

@test "an image no requirement governs, and a request without sidecars, reach no registry" {
  local before
  before=$(registry_requests)
  kwrun_signed "$(vm_running "$REGISTRY/hooks/unsigned:v1")" \
    "$(settings '[{image: "\($registry)/hooks/signed:*", pubKeys: [$a]}]')"
  assert_allowed
  kwrun_signed "$TEST_DATA/vm-create-no-sidecar.json" "$(by_key_a)"
  assert_allowed
  [ "$(registry_requests)" -eq "$before" ]
}

@test "an UPDATE that leaves the sidecars as they were reaches no registry" {
  local request="$BATS_TEST_TMPDIR/update.json" sidecars before
  sidecars=$(jq -nc --arg image "$REGISTRY/hooks/unsigned:v1" '[{image: $image}] | tojson')
  jq --argjson s "$sidecars" \
    '.object.spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] = $s
     | .oldObject.spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"] = $s' \
    "$TEST_DATA/vm-update-unchanged.json" >"$request"
  before=$(registry_requests)
  kwrun_signed "$request" "$(by_key_a)"
  assert_allowed
  [ "$(registry_requests)" -eq "$before" ]
}

@test "an image signed with a certificate's key runs when the certificate chains to the CA" {
  local image="$REGISTRY/hooks/certified:v1"
  kwrun_signed "$(vm_running "$image")" \
    "$(settings '[{image: "\($registry)/hooks/*", certificates: [$certificate], certificateChain: [$ca]}]')"
  assert_allowed
  # Another CA did not issue the certificate.
  kwrun_signed "$(vm_running "$image")" \
    "$(settings '[{image: "\($registry)/hooks/*", certificates: [$certificate], certificateChain: [$other_ca]}]')"
  assert_rejected "signatures[0] (certificates[0]): not verified"
  # Signed without a transparency log: refused when a Rekor bundle is required.
  kwrun_signed "$(vm_running "$image")" \
    "$(settings '[{image: "\($registry)/hooks/*", certificates: [$certificate], certificateChain: [$ca], requireRekorBundle: true}]')"
  assert_rejected "signatures[0] (certificates[0]): not verified"
  # The key's signature is not a signature of an image signed by another key.
  kwrun_signed "$(vm_running "$REGISTRY/hooks/signed:v1")" \
    "$(settings '[{image: "\($registry)/hooks/*", certificates: [$certificate]}]')"
  assert_rejected "signatures[0] (certificates[0]): not verified"
}
