#!/usr/bin/env bats
# End-to-end: the built module, through `kwctl run` (or the in-repo host, which takes the same flags).

load helpers

@test "every kind that can bring a sidecar is allowed with the sidecar listed" {
  for fixture in vm vmi vmirs vmpool-v1alpha1 vmpool-v1beta1 instancetype clusterinstancetype preference clusterpreference; do
    kwrun --request-path "$TEST_DATA/$fixture-create.json" --settings-json "$GPU_SETTINGS"
    assert_allowed || { echo "fixture $fixture"; return 1; }
  done
}

@test "every kind is rejected at its own location with an empty allow-list" {
  while read -r fixture path; do
    kwrun --request-path "$TEST_DATA/$fixture-create.json" --settings-json '{}'
    assert_rejected "$path[\"hooks.kubevirt.io/hookSidecars\"][0]: image \"$GPU_HOOK\"" "is not in allowedImages" ||
      { echo "fixture $fixture"; return 1; }
  done <<'TABLE'
vm spec.template.metadata.annotations
vmi metadata.annotations
vmirs spec.template.metadata.annotations
vmpool-v1alpha1 spec.virtualMachineTemplate.spec.template.metadata.annotations
vmpool-v1beta1 spec.virtualMachineTemplate.spec.template.metadata.annotations
instancetype spec.annotations
clusterinstancetype spec.annotations
preference spec.annotations
clusterpreference spec.annotations
TABLE
}

@test "DELETE, other kinds and VMs without sidecars are accepted" {
  for fixture in vm-delete pod-create vm-create-no-sidecar; do
    kwrun --request-path "$TEST_DATA/$fixture.json" --settings-json '{}'
    assert_allowed || { echo "fixture $fixture"; return 1; }
  done
}

@test "an image matches in any of Docker Hub's spellings" {
  for image in index.docker.io/library/busybox docker.io/library/busybox:latest busybox; do
    kwrun --request-path "$(vm_with_sidecars "[{\"image\": \"$image\"}]")" \
      --settings-json '{"allowedImages": ["busybox:latest"]}'
    assert_allowed || { echo "image $image"; return 1; }
  done
}

@test "registry hosts as the runtime reads them: lower case only, IPv6 with its port" {
  kwrun --request-path "$(vm_with_sidecars '[{"image": "REGISTRY.EXAMPLE.COM/kubevirt-hooks/qemu-commandline:v1.2.0"}]')" \
    --settings-json "$GPU_SETTINGS"
  assert_rejected 'image "REGISTRY.EXAMPLE.COM/kubevirt-hooks/qemu-commandline:v1.2.0" is not a valid image reference: registry host must be lowercase'
  kwrun --request-path "$(vm_with_sidecars '[{"image": "INDEX.DOCKER.IO/library/busybox"}]')" \
    --settings-json '{"allowedImages": ["busybox:latest"]}'
  assert_rejected 'registry host must be lowercase'
  local ipv6='{"allowedImages": ["[fd00::10]:5000/hooks/*"]}'
  kwrun --request-path "$(vm_with_sidecars '[{"image": "[fd00::10]:5000/hooks/gpu:v1"}]')" --settings-json "$ipv6"
  assert_allowed
  kwrun --request-path "$(vm_with_sidecars '[{"image": "[fd00::10]:5001/hooks/gpu:v1"}]')" --settings-json "$ipv6"
  assert_rejected '([fd00::10]:5001/hooks/gpu:v1) is not in allowedImages'
  kwrun --request-path "$TEST_DATA/vm-create.json" --settings-json '{"allowedImages": ["QUAY.IO/acme/hook:v1"]}'
  assert_invalid_settings 'allowedImages[0] "QUAY.IO/acme/hook:v1": not a valid image reference: registry host must be lowercase'
}

@test "requireRegistry: a short name is rejected, the same image with its registry accepted" {
  local settings='{"allowedImages": ["acme/hook:v1"], "requireRegistry": true}'
  kwrun --request-path "$(vm_with_sidecars '[{"image": "acme/hook:v1"}]')" --settings-json "$settings"
  assert_rejected 'image "acme/hook:v1" does not name its registry, and requireRegistry is true'
  kwrun --request-path "$(vm_with_sidecars '[{"image": "docker.io/acme/hook:v1"}]')" --settings-json "$settings"
  assert_allowed
}

@test "what Go's json.Marshal writes is accepted; an empty configMap or pvc object is present" {
  kwrun --request-path "$(vm_with_sidecars "[{\"image\":\"$GPU_HOOK\",\"imagePullPolicy\":\"\",\"configMap\":null,\"pvc\":null}]")" \
    --settings-json "$GPU_SETTINGS"
  assert_allowed
  kwrun --request-path "$(vm_with_sidecars "[{\"image\":\"$GPU_HOOK\",\"configMap\":{}}]")" --settings-json "$GPU_SETTINGS"
  assert_rejected 'allowConfigMap is false'
  kwrun --request-path "$(vm_with_sidecars "[{\"image\":\"$GPU_HOOK\",\"pvc\":{}}]")" \
    --settings-json "{\"allowedImages\": [\"$GPU_HOOK\"], \"allowPVC\": true}"
  assert_rejected 'pvc has no name: KubeVirt would mount a claim named "", so the VM could not start'
}

@test "wildcards allow what they name and nothing more" {
  local settings='{"allowedImages": ["ghcr.io/org/*", "quay.io/hooks/gpu:*"]}'
  kwrun --request-path "$(vm_with_sidecars '[{"image": "ghcr.io/org/team/hook:v1"}, {"image": "quay.io/hooks/gpu@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]')" \
    --settings-json "$settings"
  assert_allowed
  kwrun --request-path "$(vm_with_sidecars '[{"image": "ghcr.io/organisation/hook:v1"}]')" --settings-json "$settings"
  assert_rejected '(ghcr.io/organisation/hook:v1) is not in allowedImages'
}

@test "a digest request needs a digest entry" {
  local digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
  kwrun --request-path "$(vm_with_sidecars "[{\"image\": \"$GPU_HOOK@$digest\"}]")" --settings-json "$GPU_SETTINGS"
  assert_rejected "is not in allowedImages"
  kwrun --request-path "$(vm_with_sidecars "[{\"image\": \"$GPU_HOOK@$digest\"}]")" \
    --settings-json "{\"allowedImages\": [\"$GPU_HOOK@$digest\"]}"
  assert_allowed
}

@test "rejection reasons: images, the shim and the escape hatches" {
  while IFS='|' read -r sidecars settings expected; do
    kwrun --request-path "$(vm_with_sidecars "$sidecars")" --settings-json "$settings"
    assert_rejected "$expected" || { echo "case: $sidecars"; return 1; }
  done <<TABLE
[{"image": "docker.io/attacker/qemu-hook"}]|$GPU_SETTINGS|image "docker.io/attacker/qemu-hook" (docker.io/attacker/qemu-hook:latest) is not in allowedImages
[{"image": "Not A Reference"}]|$GPU_SETTINGS|image "Not A Reference" is not a valid image reference
[{"configMap": {"name": "cm", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}]|{"allowConfigMap": true}|sidecarShimImage is not set
[null]|{"sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0"}|no image (KubeVirt's sidecar-shim) (quay.io/kubevirt/sidecar-shim:v1.4.0) is not in allowedImages
[{"image": "$GPU_HOOK", "command": ["/bin/bash"]}]|$GPU_SETTINGS|allowCommand is false
[{"image": "$GPU_HOOK", "configMap": {"name": "cm", "key": "k", "hookPath": "/hook"}}]|$GPU_SETTINGS|allowConfigMap is false
[{"image": "$GPU_HOOK", "pvc": {"name": "data", "volumePath": "/data"}}]|$GPU_SETTINGS|allowPVC is false
[{"image": "$GPU_HOOK", "pvc": {"name": "d", "volumePath": "/d", "sharedComputePath": "/var/run/kubevirt-hooks"}}]|{"allowedImages": ["$GPU_HOOK"], "allowPVC": true}|allowSharedComputePath is false
TABLE
}

@test "switches allow what they name" {
  kwrun --request-path "$(vm_with_sidecars '[{"configMap": {"name": "cm", "key": "k", "hookPath": "/usr/bin/onDefineDomain"}}]')" \
    --settings-json '{"allowedImages": ["quay.io/kubevirt/sidecar-shim:v1.4.0"], "sidecarShimImage": "quay.io/kubevirt/sidecar-shim:v1.4.0", "allowConfigMap": true}'
  assert_allowed
}

@test "the annotation is decoded no more leniently than KubeVirt decodes it" {
  while IFS='|' read -r sidecars expected; do
    kwrun --request-path "$(vm_with_sidecars "$sidecars")" --settings-json "$GPU_SETTINGS"
    assert_rejected "$expected" || { echo "case: $sidecars"; return 1; }
  done <<TABLE
[{"image": "$GPU_HOOK", "Image": "docker.io/attacker/qemu-hook"}]|has the key "Image", which KubeVirt's decoder reads as "image"
[{"IMAGE": "docker.io/attacker/qemu-hook"}]|reads as "image"
[{"image": "$GPU_HOOK", "image": "docker.io/attacker/qemu-hook"}]|has the key "image" twice
[{"image": "$GPU_HOOK", "argſ": ["--version"]}]|reads as "args"
[{"image": "$GPU_HOOK", "imagePullPolicy": "Always", "downwardAPI": ["pod-info"]}]|unknown key "downwardAPI"
[{"image": "$GPU_HOOK", "imagePullPolicy": "Sometimes"}]|imagePullPolicy "Sometimes"
[{"image": 5}]|invalid type: integer
{"image": "$GPU_HOOK"}|expected a JSON array
["$GPU_HOOK"]|entry 0 to be a hook sidecar object
[{image: x}]|not a valid hook sidecar list
TABLE
  kwrun --request-path "$(vm_with_sidecars '')" --settings-json "$GPU_SETTINGS"
  assert_rejected "the value is empty"
}

@test "no sidecars: [] and null" {
  for value in '[]' 'null'; do
    kwrun --request-path "$(vm_with_sidecars "$value")" --settings-json '{}'
    assert_allowed
  done
}

@test "one rejection lists every violation" {
  kwrun --request-path "$(vm_with_sidecars '[{"image": "evil:1", "command": ["/bin/sh"]}, {"pvc": {"name": "d"}}]')" \
    --settings-json "$GPU_SETTINGS"
  assert_rejected '][0]: image "evil:1" (docker.io/library/evil:1)' '][0]: command' '][1]: no image' '][1]: pvc "d"'
}

@test "UPDATE: unchanged sidecars pass with a warning, changed ones are checked" {
  kwrun --request-path "$TEST_DATA/vm-update-unchanged.json" --settings-json '{}'
  assert_allowed
  assert_warning "unchanged by this update"
  kwrun --request-path "$TEST_DATA/vm-update-adds-sidecar.json" --settings-json '{}'
  assert_rejected "is not in allowedImages"
}

@test "UPDATE is judged location by location" {
  # Removing the template's sidecar is not blocked by an unchanged copy on the VM's own metadata.
  kwrun --request-path "$TEST_DATA/vm-update-removes-sidecar-keeps-metadata-copy.json" --settings-json '{}'
  assert_allowed
  assert_warning 'metadata.annotations["hooks.kubevirt.io/hookSidecars"] is unchanged by this update'
  # Moving that copy into the template changes the template: checked as on CREATE.
  kwrun --request-path "$TEST_DATA/vm-update-moves-sidecar-into-template.json" --settings-json '{}'
  assert_rejected 'spec.template.metadata.annotations["hooks.kubevirt.io/hookSidecars"][0]: image' "is not in allowedImages"
}

@test "the annotation on a VM's own metadata is checked, with a warning" {
  kwrun --request-path "$TEST_DATA/vm-create-annotation-on-vm-metadata.json" --settings-json "$GPU_SETTINGS"
  assert_allowed
  assert_warning "has no effect on a VirtualMachine"
  kwrun --request-path "$TEST_DATA/vm-create-annotation-on-vm-metadata.json" --settings-json '{}'
  assert_rejected 'metadata.annotations["hooks.kubevirt.io/hookSidecars"][0]'
}

@test "an object the policy cannot read is rejected" {
  local request="$BATS_TEST_TMPDIR/unreadable.json"
  jq '.object.spec.template = "surprise"' "$TEST_DATA/vm-create.json" >"$request"
  kwrun --request-path "$request" --settings-json "$GPU_SETTINGS"
  assert_rejected "cannot read spec.template"
}

@test "settings errors are refused before evaluation, naming the culprit" {
  while IFS='|' read -r settings expected; do
    kwrun --request-path "$TEST_DATA/vm-create.json" --settings-json "$settings"
    assert_invalid_settings "$expected" || { echo "case: $settings"; return 1; }
  done <<'TABLE'
{"allowedImage": ["busybox"]}|unknown field `allowedImage`
{"allowedImages": ["ok:1", "*"]}|allowedImages[1] "*"
{"allowedImages": ["ghcr.io/*/hook"]}|a wildcard is allowed only as
{"sidecarShimImage": "quay.io/kubevirt/*"}|sidecarShimImage "quay.io/kubevirt/*": must name one image
{"allowSharedComputePath": true}|allowSharedComputePath: true needs allowPVC: true
{"allowCommand": "yes"}|invalid type
{"sidecarProfiles": [{"image": "*"}]}|sidecarProfiles[0].image "*": a wildcard is allowed only as
{"sidecarProfiles": [{"image": "a:1", "args": [["("]]}]}|sidecarProfiles[0].args[0][0] "(":
{"sidecarProfiles": [{"image": "a:1", "annotations": {"Not A Key": ".*"}}]}|sidecarProfiles[0].annotations key "Not A Key": not a valid annotation key
{"sidecarProfiles": [{"image": "a:1", "arg": [[]]}]}|sidecarProfiles[0]: unknown field `arg`
{"sidecarProfiles": [{"image": "a:1", "command": []}]}|sidecarProfiles[0].command: an empty list of alternatives
{"sidecarProfiles": [{"image": "a:1", "args": [["[a-z]{1,1001}"]]}]}|invalid repeat count: `{1,1001}`, as RE2 refuses it
{"sidecarProfiles": [{"image": "a:1", "args": [["(?:(?:[a-z]{0,30},?){0,30} ?){0,30}"]]}]}|invalid repeat count: `{0,30}` (nested repetitions
{"sidecarProfiles": [{"image": "a:1", "args": [["[0-9]+)(x"]]}]}|unexpected ): `[0-9]+)(x`
{"sidecarProfiles": [{"image": "a:1", "args": [["\\pL"]]}]}|Unicode classes (\p, \P) are not supported
{"sidecarProfiles": [{"image": "a:1", "args": [["(?:[a-z]{0,998}a)*"]]}]}|lower profileValueMaxBytes
{"profileValueMaxBytes": 0}|profileValueMaxBytes 0: must be 1 to 262144
TABLE
}

@test "sidecar profiles pin args and annotations through the module" {
  local profile='{"image": "'"$GPU_HOOK"'", "args": [["--version", "v1alpha3"]], "annotations": {"qemu-commandline.hooks.example.com/args": "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"}}'
  local settings='{"allowedImages": ["'"$GPU_HOOK"'"], "sidecarProfiles": ['"$profile"']}'
  # vm-create.json: the hook with --version v1alpha3 and a 64 GiB aperture.
  kwrun --request-path "$TEST_DATA/vm-create.json" --settings-json "$settings"
  assert_allowed
  kwrun --request-path "$(vm_with_sidecars '[{"image": "'"$GPU_HOOK"'", "args": ["--version", "v1alpha2"]}]')" --settings-json "$settings"
  assert_rejected 'sidecarProfiles[0] (image "'"$GPU_HOOK"'"): args[1] "v1alpha2" does not match "v1alpha3"'
  local request="$BATS_TEST_TMPDIR/extra-option.json"
  jq '.object.spec.template.metadata.annotations["qemu-commandline.hooks.example.com/args"] += " -drive file=/dev/sda"' \
    "$TEST_DATA/vm-create.json" >"$request"
  kwrun --request-path "$request" --settings-json "$settings"
  assert_rejected 'annotation "qemu-commandline.hooks.example.com/args" "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536 -drive file=/dev/sda" does not match'
  # profilesRequired: an allowed image that no profile governs is rejected.
  kwrun --request-path "$TEST_DATA/vm-create.json" \
    --settings-json '{"allowedImages": ["'"$GPU_HOOK"'"], "profilesRequired": true}'
  assert_rejected 'no sidecarProfiles entry governs it, and profilesRequired is true'
}

# Issue 21: the red team's cases through the module.

@test "no allowed spelling of an image escapes its tag profile" {
  local drive="-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=1 -drive file=/dev/sda"
  for entry in "registry.example.com/kubevirt-hooks/*" "$REPO:*" "$GPU_HOOK@$DIGEST"; do
    local settings='{"allowedImages": ["'"$entry"'"], "sidecarProfiles": ['"$MMIO_PROFILE"']}'
    for image in "$GPU_HOOK@$DIGEST" "$REPO@$DIGEST" "$REPO:v9.9.9@$DIGEST"; do
      kwrun --request-path "$(vm_with_sidecar_and_annotation "$image" '["--free"]' "$drive")" --settings-json "$settings"
      assert_rejected 'sidecarProfiles[0] (image "'"$GPU_HOOK"'")' '-drive file=/dev/sda" does not match' ||
        { echo "case: $entry, $image"; return 1; }
      kwrun --request-path "$(vm_with_sidecar_and_annotation "$image" '["--version", "v1alpha3"]' \
        "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536")" --settings-json "$settings"
      assert_allowed || { echo "case: $entry, $image"; return 1; }
    done
  done
  # A digest may be any tag's content: judged as each tag the profiles of its repository name.
  local two='{"allowedImages": ["'"$REPO:*"'"], "sidecarProfiles": [{"image": "'"$REPO:v1"'", "args": [["--version", "v1alpha2"]]}, {"image": "'"$REPO:v2"'", "args": [["--version", "v1alpha3"]]}]}'
  kwrun --request-path "$(vm_with_sidecar_and_annotation "$REPO:v1@$DIGEST" '["--version", "v1alpha2"]' "")" --settings-json "$two"
  assert_rejected 'by digest, which may be any tag'"'"'s content, so as tag "v2" too: sidecarProfiles[1]'
}

@test "a value longer than profileValueMaxBytes is refused by its length, unread" {
  local settings='{"allowedImages": ["'"$GPU_HOOK"'"], "sidecarProfiles": ['"$MMIO_PROFILE"']}'
  python3 -c 'print("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=" + "0" * 2900000, end="")' >"$BATS_TEST_TMPDIR/huge.txt"
  kwrun --request-path "$(vm_with_sidecar_and_annotation "$GPU_HOOK" '["--version", "v1alpha3"]' "$(<"$BATS_TEST_TMPDIR/huge.txt")")" \
    --settings-json "$settings"
  assert_rejected "is 2900043 bytes, more than profileValueMaxBytes (4096), so it is not matched"
  # The same value within a raised bound is matched (and fails: it is no MMIO size).
  python3 -c 'print("-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=" + "1" * 5000, end="")' >"$BATS_TEST_TMPDIR/long.txt"
  kwrun --request-path "$(vm_with_sidecar_and_annotation "$GPU_HOOK" '["--version", "v1alpha3"]' "$(<"$BATS_TEST_TMPDIR/long.txt")")" \
    --settings-json "$(jq -c '.profileValueMaxBytes = 8192' <<<"$settings")"
  assert_allowed
}

@test "patterns mean what they mean in RE2" {
  while IFS='|' read -r pattern value verdict; do
    local settings
    settings=$(jq -nc --arg image "$GPU_HOOK" --arg p "$pattern" \
      '{allowedImages: [$image], sidecarProfiles: [{image: $image, annotations: {"qemu-commandline.hooks.example.com/args": $p}}]}')
    kwrun --request-path "$(vm_with_sidecar_and_annotation "$GPU_HOOK" '[]' "$(printf '%b' "$value")")" --settings-json "$settings"
    if [[ "$verdict" == allowed ]]; then
      assert_allowed || { echo "case: $pattern on $value"; return 1; }
    else
      assert_rejected "does not match" || { echo "case: $pattern on $value"; return 1; }
    fi
  done <<'TABLE'
\s|\v|rejected
\s|\f|allowed
\<a\>|a|rejected
\<a\>|<a>|allowed
(?i)s|\u017f|allowed
(?i)k|\u212a|allowed
\Qa.b\E|axb|rejected
[[:alpha:][]+|a[|allowed
x{,3}|x{,3}|allowed
\101|A|allowed
[\d-z]+|1-z|allowed
[a&&b]+|a&b|allowed
[a~~b]+|~|allowed
(?m)a$\n^b|a\nb|allowed
a$\n^b|a\nb|rejected
TABLE
}

@test "an AdmissionReview is read as its request, also from stdin" {
  local review="$BATS_TEST_TMPDIR/review.json"
  jq '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: .}' "$TEST_DATA/vm-create.json" >"$review"
  kwrun --request-path "$review" --settings-json '{}'
  assert_rejected "is not in allowedImages"
  [ "$(jq -r .uid <<<"$output")" = "$(jq -r .uid "$TEST_DATA/vm-create.json")" ]
  run --separate-stderr "${KWCTL:-kwctl}" run "$POLICY" --request-path - --settings-json "$GPU_SETTINGS" <"$review"
  assert_allowed
}

@test "the examples of make run give their documented verdicts" {
  kwrun --request-path "$ROOT/examples/1-gpu-aperture-sidecar.json" --settings-path "$ROOT/examples/settings.json"
  assert_allowed
  kwrun --request-path "$ROOT/examples/2-unlisted-image.json" --settings-path "$ROOT/examples/settings.json"
  assert_rejected 'image "docker.io/attacker/qemu-hook:latest"'
  kwrun --request-path "$ROOT/examples/3-spoofed-key.json" --settings-path "$ROOT/examples/settings.json"
  assert_rejected 'has the key "Image"'
  kwrun --request-path "$ROOT/examples/4-aperture-with-another-qemu-option.json" --settings-path "$ROOT/examples/settings.json"
  assert_rejected 'sidecarProfiles[0] (image "'"$GPU_HOOK"'"): annotation "qemu-commandline.hooks.example.com/args"' 'does not match "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"'
}

@test "the largest annotations are answered within the deadline, with a short message" {
  # 32 allowed entries (the most the policy reads) filling 256 KiB (the Kubernetes annotation limit).
  python3 - "$GPU_HOOK" >"$BATS_TEST_TMPDIR/big.txt" <<'PY'
import json, sys
entry = {"image": sys.argv[1], "args": ["--version", "x" * (256 * 1024 // 32 - 200)]}
print(json.dumps([entry] * 32), end="")
PY
  kwrun --request-path "$(vm_with_sidecars "$(<"$BATS_TEST_TMPDIR/big.txt")")" --settings-json "$GPU_SETTINGS"
  assert_allowed
  # A VM template is not held to that limit: 2.9 MiB of `{}` entries, rejected at entry 32.
  python3 -c 'print("[" + ",".join(["{}"] * 970000) + "]", end="")' >"$BATS_TEST_TMPDIR/huge.txt"
  kwrun --request-path "$(vm_with_sidecars "$(<"$BATS_TEST_TMPDIR/huge.txt")")" --settings-json "$GPU_SETTINGS"
  assert_rejected 'more than 32 entries; KubeVirt would add a container'
  [ "$(jq -r '.status.message | length' <<<"$output")" -lt 512 ]
  # 10 000 unlisted entries: the same bound, one short message.
  kwrun --request-path "$(vm_with_sidecars "[$(printf '{"image":"evil:1"},%.0s' $(seq 9999)){\"image\":\"evil:1\"}]")" \
    --settings-json "$GPU_SETTINGS"
  assert_rejected 'more than 32 entries'
  # 32 entries, each with a reason: identical reasons collapsed, the message a few KiB at most.
  kwrun --request-path "$(vm_with_sidecars "[$(printf '{"image":"evil:1"},%.0s' $(seq 31)){\"image\":\"evil:1\"}]")" \
    --settings-json "$GPU_SETTINGS"
  assert_rejected '[0], [1], [2] and 29 more entries: image "evil:1" (docker.io/library/evil:1) is not in allowedImages'
  [ "$(jq -r '.status.message | length' <<<"$output")" -lt 4096 ]
}

# Launcher Pods, as KubeVirt renders them (test_data/launcher-pod-*.json, from tests/kubevirt-render).
SHIM="quay.io/kubevirt/sidecar-shim:v1.7.0"
BINDING="registry.example.com/network/device-info-binding:v1.0.0"

@test "a launcher Pod is allowed when its sidecars are, the shim and network-binding sidecars by their real names" {
  kwrun --request-path "$TEST_DATA/launcher-pod-create-gpu-hook.json" --settings-json "$GPU_SETTINGS"
  assert_allowed
  kwrun --request-path "$TEST_DATA/launcher-pod-create-shim-configmap.json" \
    --settings-json "{\"allowedImages\": [\"$SHIM\"], \"allowConfigMap\": true}"
  assert_allowed
  kwrun --request-path "$TEST_DATA/launcher-pod-create-network-binding.json" \
    --settings-json "{\"allowedImages\": [\"$GPU_HOOK\", \"$BINDING\"]}"
  assert_allowed
}

@test "a launcher Pod is rejected by the annotation's rules, naming the container" {
  kwrun --request-path "$TEST_DATA/launcher-pod-create-gpu-hook.json" --settings-json '{}'
  assert_rejected "spec.containers[1] \"hook-sidecar-0\": image \"$GPU_HOOK\"" "is not in allowedImages"
  kwrun --request-path "$TEST_DATA/launcher-pod-create-network-binding.json" --settings-json "$GPU_SETTINGS"
  assert_rejected "\"hook-sidecar-1\": image \"$BINDING\""
  kwrun --request-path "$TEST_DATA/launcher-pod-create-pvc-shared.json" \
    --settings-json "{\"allowedImages\": [\"$GPU_HOOK\"], \"allowPVC\": true}"
  assert_rejected "mounts user data in the compute container, and allowSharedComputePath is false"
  kwrun --request-path "$TEST_DATA/launcher-pod-create-command.json" --settings-json "$GPU_SETTINGS"
  assert_rejected "allowCommand is false"
}

@test "a swapped sidecar image is rejected; an update that leaves the sidecars alone only warns" {
  kwrun --request-path "$TEST_DATA/launcher-pod-update-image-swap.json" --settings-json "$GPU_SETTINGS"
  assert_rejected "image \"docker.io/attacker/qemu-hook:latest\""
  kwrun --request-path "$TEST_DATA/launcher-pod-update-unchanged.json" --settings-json '{}'
  assert_allowed
  assert_warning "\"hook-sidecar-0\" is unchanged by this update"
  kwrun --request-path "$TEST_DATA/launcher-pod-update-removes-label.json" --settings-json "$GPU_SETTINGS"
  assert_rejected "removes the label kubevirt.io=virt-launcher"
}

@test "other Pods and launcher Pods without sidecars are accepted whatever the settings" {
  for request in "$TEST_DATA/pod-create.json" "$TEST_DATA/launcher-pod-create-no-sidecar.json" \
    "$ROOT/e2e-tests/bench/pod-not-launcher.json"; do
    kwrun --request-path "$request" --settings-json '{}'
    assert_allowed || { echo "request $request"; return 1; }
  done
}
