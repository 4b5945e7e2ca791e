#!/usr/bin/env python3
"""Writes the AdmissionRequest fixtures of test_data/.

Each fixture is a bare AdmissionRequest (what `kwctl run --request-path` takes) whose object looks
like `kubectl get -o json` of that kind. Run it again after editing; the output is committed.
"""
import copy
import json
import os
import pathlib
import subprocess
import zlib

HERE = pathlib.Path(__file__).parent
HOOKS = "hooks.kubevirt.io/hookSidecars"
GPU_HOOK = "registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0"
GPU_SIDECARS = json.dumps([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}])
GPU_ARGS = {"qemu-commandline.hooks.example.com/args": "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536"}


def meta(name, namespace="default", annotations=None, labels=None):
    m = {
        "creationTimestamp": "2026-11-20T09:12:44Z",
        "generation": 1,
        "name": name,
        "resourceVersion": "1837265",
        "uid": "6f1c2a0e-1d6b-4b59-9b7e-3f2a1c7d9e01",
    }
    if namespace:
        m["namespace"] = namespace
    if annotations:
        m["annotations"] = annotations
    if labels:
        m["labels"] = labels
    return m


def vmi_spec():
    return {
        "architecture": "amd64",
        "domain": {
            "cpu": {"cores": 8, "model": "host-passthrough", "sockets": 1, "threads": 1},
            "devices": {
                "disks": [
                    {"bootOrder": 1, "disk": {"bus": "virtio"}, "name": "disk-0"},
                    {"disk": {"bus": "virtio"}, "name": "cloudinitdisk"},
                ],
                "gpus": [{"deviceName": "nvidia.com/AD102GL_L40S", "name": "gpu-0"}],
                "interfaces": [{"bridge": {}, "macAddress": "52:54:00:4e:7a:11", "model": "virtio", "name": "default"}],
            },
            "features": {"acpi": {"enabled": True}, "smm": {"enabled": True}},
            "firmware": {"bootloader": {"efi": {"secureBoot": False}}, "uuid": "1a2f4a5c-7c1e-5d9a-8b0c-2e6f9d3b4a77"},
            "machine": {"type": "q35"},
            "memory": {"guest": "64Gi"},
            "resources": {"limits": {"cpu": "8", "memory": "64Gi"}, "requests": {"cpu": "8", "memory": "64Gi"}},
        },
        "evictionStrategy": "LiveMigrateIfPossible",
        "networks": [{"multus": {"networkName": "default/vlan100"}, "name": "default"}],
        "terminationGracePeriodSeconds": 120,
        "volumes": [
            {"name": "disk-0", "persistentVolumeClaim": {"claimName": "gpu-vm-disk-0-x7k2p"}},
            {"cloudInitNoCloud": {"secretRef": {"name": "gpu-vm-cloudinit"}}, "name": "cloudinitdisk"},
        ],
    }


def template(annotations):
    return {"metadata": {"annotations": annotations, "labels": {"harvesterhci.io/vmName": "gpu-vm"}}, "spec": vmi_spec()}


def vm(annotations):
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": meta("gpu-vm", annotations={
            "harvesterhci.io/vmRunStrategy": "RerunOnFailure",
            "kubevirt.io/latest-observed-api-version": "v1",
        }, labels={"harvesterhci.io/creator": "harvester"}),
        "spec": {"runStrategy": "RerunOnFailure", "template": template(annotations)},
        "status": {"printableStatus": "Stopped", "ready": False},
    }


def vmi(annotations):
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": meta("gpu-vm", annotations=annotations, labels={"harvesterhci.io/vmName": "gpu-vm"}),
        "spec": vmi_spec(),
        "status": {"phase": "Pending"},
    }


def vmirs(annotations):
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceReplicaSet",
        "metadata": meta("gpu-workers"),
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "gpu-workers"}}, "template": template(annotations)},
    }


def pool(version):
    def build(annotations):
        return {
            "apiVersion": f"pool.kubevirt.io/{version}",
            "kind": "VirtualMachinePool",
            "metadata": meta("gpu-pool"),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "gpu-pool"}},
                "virtualMachineTemplate": {
                    "metadata": {"labels": {"app": "gpu-pool"}},
                    "spec": {"runStrategy": "Always", "template": template(annotations)},
                },
            },
        }
    return build


def instancetype(kind, namespaced):
    def build(annotations):
        return {
            "apiVersion": "instancetype.kubevirt.io/v1beta1",
            "kind": kind,
            "metadata": meta("gpu.large", namespace="default" if namespaced else None),
            "spec": {"annotations": annotations, "cpu": {"guest": 8}, "memory": {"guest": "64Gi"},
                     "gpus": [{"deviceName": "nvidia.com/AD102GL_L40S", "name": "gpu-0"}]}
            if "Instancetype" in kind else
            {"annotations": annotations, "firmware": {"preferredUseEfi": True}, "devices": {"preferredDiskBus": "virtio"}},
        }
    return build


KINDS = {
    # fixture name: (group, version, kind, resource, builder, namespaced)
    "vm": ("kubevirt.io", "v1", "VirtualMachine", "virtualmachines", vm, True),
    "vmi": ("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances", vmi, True),
    "vmirs": ("kubevirt.io", "v1", "VirtualMachineInstanceReplicaSet", "virtualmachineinstancereplicasets", vmirs, True),
    "vmpool-v1alpha1": ("pool.kubevirt.io", "v1alpha1", "VirtualMachinePool", "virtualmachinepools", pool("v1alpha1"), True),
    "vmpool-v1beta1": ("pool.kubevirt.io", "v1beta1", "VirtualMachinePool", "virtualmachinepools", pool("v1beta1"), True),
    "instancetype": ("instancetype.kubevirt.io", "v1beta1", "VirtualMachineInstancetype", "virtualmachineinstancetypes",
                     instancetype("VirtualMachineInstancetype", True), True),
    "clusterinstancetype": ("instancetype.kubevirt.io", "v1beta1", "VirtualMachineClusterInstancetype",
                            "virtualmachineclusterinstancetypes", instancetype("VirtualMachineClusterInstancetype", False), False),
    "preference": ("instancetype.kubevirt.io", "v1beta1", "VirtualMachinePreference", "virtualmachinepreferences",
                   instancetype("VirtualMachinePreference", True), True),
    "clusterpreference": ("instancetype.kubevirt.io", "v1beta1", "VirtualMachineClusterPreference",
                          "virtualmachineclusterpreferences", instancetype("VirtualMachineClusterPreference", False), False),
}


def request(name, operation, obj, old=None, namespaced=True):
    group, version, kind, resource = KINDS[name][:4] if name in KINDS else name
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    req = {
        "uid": f"0d6e8c3a-{zlib.crc32((str(name) + operation).encode()) % 10**4:04d}-4c1b-9f0e-5a7b2c9d1e33",
        "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
        "name": obj["metadata"].get("name", ""), "operation": operation,
        "userInfo": {"username": "alice", "groups": ["vm-owners", "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"kind": f"{operation.capitalize()}Options", "apiVersion": "meta.k8s.io/v1"},
    }
    if namespaced:
        req["namespace"] = obj["metadata"].get("namespace", "default")
    return req


def write(name, value):
    (HERE / f"{name}.json").write_text(json.dumps(value, indent=2) + "\n")


def main():
    annotations = {HOOKS: GPU_SIDECARS, **GPU_ARGS}
    for name, (_, _, _, _, build, namespaced) in KINDS.items():
        write(f"{name}-create", request(name, "CREATE", build(annotations), namespaced=namespaced))
    plain = vm({"kubevirt.io/allow-pod-bridge-network-live-migration": "true"})
    write("vm-create-no-sidecar", request("vm", "CREATE", plain))
    # UPDATE of a VM whose sidecars did not change (the run strategy did).
    old = vm(annotations)
    new = copy.deepcopy(old)
    new["spec"]["runStrategy"] = "Halted"
    new["metadata"]["generation"] = 2
    write("vm-update-unchanged", request("vm", "UPDATE", new, old))
    # UPDATE that adds a sidecar to a VM that had none.
    write("vm-update-adds-sidecar", request("vm", "UPDATE", vm(annotations), plain))
    # The annotation on the VM's own metadata, where KubeVirt never reads it.
    on_vm = vm({})
    on_vm["metadata"]["annotations"][HOOKS] = GPU_SIDECARS
    write("vm-create-annotation-on-vm-metadata", request("vm", "CREATE", on_vm))
    # UPDATEs judged location by location: the template's sidecar removed while an unchanged copy
    # stays on the VM's own metadata; and that copy moved into the template.
    both = vm(annotations)
    both["metadata"]["annotations"][HOOKS] = GPU_SIDECARS
    removed = copy.deepcopy(both)
    del removed["spec"]["template"]["metadata"]["annotations"][HOOKS]
    write("vm-update-removes-sidecar-keeps-metadata-copy", request("vm", "UPDATE", removed, both))
    moved = vm(annotations)
    write("vm-update-moves-sidecar-into-template", request("vm", "UPDATE", moved, on_vm))
    deleted = request("vm", "DELETE", vm(annotations))
    deleted["oldObject"], deleted["object"] = deleted["object"], None
    write("vm-delete", deleted)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("virt-launcher-gpu-vm-abcde", annotations={HOOKS: "not json"}),
           "spec": {"containers": [{"name": "compute", "image": "registry.suse.com/suse/sles/15.6/virt-launcher:1.4.0"}]}}
    write("pod-create", request(("", "v1", "Pod", "pods"), "CREATE", pod))
    write_examples()
    write_bench_inputs()
    write_launcher_pods()


# The README's profile: the hook's args pinned, its QEMU arguments limited to the MMIO aperture.
MMIO_PROFILE = {
    "image": GPU_HOOK,
    "args": [["--version", "v1alpha3"]],
    "annotations": {"qemu-commandline.hooks.example.com/args": "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=[0-9]+"},
}


def write_examples():
    """The requests `make run` evaluates against examples/settings.json: the GPU sidecar within its
    profile (accepted), an unlisted image, a spoofed key, and the GPU sidecar whose QEMU arguments
    append another option (rejected)."""
    examples = HERE.parent / "examples"
    gpu = [{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}]
    extra_option = {"qemu-commandline.hooks.example.com/args":
                    GPU_ARGS["qemu-commandline.hooks.example.com/args"] + " -drive file=/dev/sda,format=raw,if=virtio"}
    cases = {
        "1-gpu-aperture-sidecar": (gpu, GPU_ARGS),
        "2-unlisted-image": ([{"image": "docker.io/attacker/qemu-hook:latest"}], GPU_ARGS),
        "3-spoofed-key": ([{"image": GPU_HOOK, "Image": "docker.io/attacker/qemu-hook:latest"}], GPU_ARGS),
        "4-aperture-with-another-qemu-option": (gpu, extra_option),
    }
    for name, (sidecars, others) in cases.items():
        obj = vm({HOOKS: json.dumps(sidecars), **others})
        (examples / f"{name}.json").write_text(json.dumps(request("vm", "CREATE", obj), indent=2) + "\n")
    settings = {
        "allowedImages": [GPU_HOOK, "registry:5000/kubevirt/example-hook-sidecar:devel"],
        "sidecarProfiles": [MMIO_PROFILE],
        "profilesRequired": True,
    }
    write_to(examples / "settings.json", settings)


def write_bench_inputs():
    """Issue 3's benchmark cases: a VM with 3 sidecars against a 50-entry allow-list (about 7 KB
    of payload), and the same VM padded to 64 KB with more disks and volumes."""
    bench = HERE.parent / "e2e-tests" / "bench"
    bench.mkdir(exist_ok=True)
    sidecars = [
        {"image": GPU_HOOK, "args": ["--version", "v1alpha3"]},
        {"image": "ghcr.io/example-org/hooks/smbios:v2.1.0", "args": ["--version", "v1alpha2"]},
        {"image": "registry:5000/kubevirt/example-hook-sidecar:devel"},
    ]
    allowed = [f"registry{i}.example.com/team-{i}/hook-{i}:v{i}.0.1" for i in range(47)]
    allowed += [GPU_HOOK, "ghcr.io/example-org/hooks/*", "registry:5000/kubevirt/example-hook-sidecar:devel"]
    (bench / "settings-50.json").write_text(json.dumps({"allowedImages": allowed}, indent=2) + "\n")
    # Five profiles, three of which govern the request's images (one each); the other two govern
    # images of the list that the request does not use.
    profiles = [
        {"image": "registry3.example.com/team-3/hook-3:*", "args": [["--version", "v1alpha[23]"]],
         "annotations": {"hooks.example.com/team-3": "[a-z0-9-]{1,63}"}},
        MMIO_PROFILE,
        {"image": "ghcr.io/example-org/hooks/smbios:*", "args": [["--version", "v1alpha[23]"]],
         "annotations": {"smbios.vm.kubevirt.io/baseBoardManufacturer": "[A-Za-z0-9 .,-]{1,64}"}},
        {"image": "registry7.example.com/team-7/*", "args": [[]], "command": [["/hook", "--mode=(fast|safe)"]]},
        {"image": "registry:5000/kubevirt/example-hook-sidecar:devel", "args": [[]]},
    ]
    write_to(bench / "settings-50-profiles-5.json", {"allowedImages": allowed, "sidecarProfiles": profiles})
    obj = vm({HOOKS: json.dumps(sidecars), **GPU_ARGS})
    # What the API server sends has managedFields, which `kubectl get` hides.
    obj["metadata"]["managedFields"] = [
        {"apiVersion": "kubevirt.io/v1", "fieldsType": "FieldsV1", "manager": manager, "operation": "Update",
         "time": "2026-11-20T09:12:44Z", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:harvesterhci.io/vmRunStrategy": {}},
                                                                     "f:labels": {".": {}, "f:harvesterhci.io/creator": {}}},
                                                      "f:spec": {".": {}, "f:runStrategy": {}, "f:template": {".": {}, "f:metadata": {".": {},
                                                                 "f:annotations": {".": {}, f"f:{HOOKS}": {}}}, "f:spec": {".": {}, "f:domain": {}, "f:networks": {}, "f:volumes": {}}}}}}
        for manager in ("harvester", "kubectl-edit", "virt-controller")
    ]
    write_to(bench / "vm-3-sidecars.json", request("vm", "CREATE", obj))
    padded = copy.deepcopy(obj)
    spec = padded["spec"]["template"]["spec"]
    n = 0
    compact = {"separators": (",", ":")}
    while len(json.dumps({"request": request("vm", "CREATE", padded), "settings": {"allowedImages": allowed}}, **compact)) < 64 * 1024:
        spec["domain"]["devices"]["disks"].append({"disk": {"bus": "virtio"}, "name": f"data-{n}", "serial": f"DATA{n:06d}"})
        spec["volumes"].append({"name": f"data-{n}", "persistentVolumeClaim": {"claimName": f"gpu-vm-data-{n}-x7k2p"}})
        n += 1
    write_to(bench / "vm-3-sidecars-64k.json", request("vm", "CREATE", padded))
    write_to(bench / "vmi-status-update.json", vmi_status_update(sidecars))


def running_vmi_status(probe_time, ip):
    """The status virt-handler keeps writing on a running VMI (KubeVirt 1.4, Harvester 1.5)."""
    def condition(kind, status="True", reason=None, message=None):
        c = {"lastProbeTime": probe_time if kind == "AgentConnected" else None,
             "lastTransitionTime": "2026-11-20T09:13:20Z", "status": status, "type": kind}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c
    return {
        "activePods": {"4b0d7c1e-2f3a-4e5b-8c6d-7e8f9a0b1c2d": "harvester-node-2"},
        "conditions": [
            condition("Ready"),
            condition("LiveMigratable", "False", "DisksNotLiveMigratable",
                      "cannot migrate VMI: PVC gpu-vm-disk-0-x7k2p is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)"),
            condition("StorageLiveMigratable"),
            condition("AgentConnected"),
        ],
        "currentCPUTopology": {"cores": 8, "sockets": 1, "threads": 1},
        "guestOSInfo": {"id": "ubuntu", "kernelRelease": "6.8.0-48-generic",
                        "kernelVersion": "#48-Ubuntu SMP PREEMPT_DYNAMIC Fri Sep 27 14:04:52 UTC 2024",
                        "machine": "x86_64", "name": "Ubuntu", "prettyName": "Ubuntu 24.04.1 LTS",
                        "version": "24.04.1 LTS (Noble Numbat)", "versionId": "24.04"},
        "interfaces": [{"infoSource": "domain, guest-agent, multus-status", "interfaceName": "enp1s0",
                        "ipAddress": ip, "ipAddresses": [ip, "fe80::5054:ff:fe4e:7a11"],
                        "linkState": "up", "mac": "52:54:00:4e:7a:11", "name": "default",
                        "podInterfaceName": "pod2c1b3e9f0a4", "queueCount": 1}],
        "launcherContainerImageVersion": "registry.suse.com/suse/sles/15.6/virt-launcher:1.4.0-150600.5.9.1",
        "machine": {"type": "pc-q35-8.2"},
        "memory": {"guestAtBoot": "64Gi", "guestCurrent": "64Gi", "guestRequested": "64Gi"},
        "migrationMethod": "BlockMigration",
        "migrationTransport": "Unix",
        "nodeName": "harvester-node-2",
        "phase": "Running",
        "phaseTransitionTimestamps": [
            {"phase": phase, "phaseTransitionTimestamp": f"2026-11-20T09:13:{10 + i:02d}Z"}
            for i, phase in enumerate(["Pending", "Scheduling", "Scheduled", "Running"])
        ],
        "qosClass": "Guaranteed",
        "selinuxContext": "none",
        "virtualMachineRevisionName": "revision-start-vm-6f1c2a0e-1d6b-4b59-9b7e-3f2a1c7d9e01-2",
        "volumeStatus": [
            {"name": "cloudinitdisk", "size": 1048576, "target": "vdb"},
            {"name": "disk-0", "persistentVolumeClaimInfo": {
                "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "200Gi"},
                "filesystemOverhead": "0", "requests": {"storage": "200Gi"}, "volumeMode": "Block"},
             "target": "vda"},
        ],
    }


def vmi_status_update(sidecars, gpu_args=GPU_ARGS):
    """A running VMI's status write: KubeVirt's VMIs have no status subresource, so every status
    change of every running VMI is an UPDATE that reaches the policy, its annotation unchanged."""
    annotations = {HOOKS: json.dumps(sidecars), **gpu_args,
                   "kubevirt.io/latest-observed-api-version": "v1",
                   "kubevirt.io/storage-observed-api-version": "v1",
                   "harvesterhci.io/sshNames": "[]"}
    old = vmi(annotations)
    old["metadata"]["finalizers"] = ["kubevirt.io/virtualMachineControllerFinalize", "foregroundDeleteVirtualMachine"]
    old["metadata"]["ownerReferences"] = [{"apiVersion": "kubevirt.io/v1", "blockOwnerDeletion": True, "controller": True,
                                           "kind": "VirtualMachine", "name": "gpu-vm", "uid": "6f1c2a0e-1d6b-4b59-9b7e-3f2a1c7d9e01"}]
    old["status"] = running_vmi_status("2026-11-26T08:00:00Z", "10.52.3.17")
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "1837266"
    new["status"] = running_vmi_status("2026-11-26T08:05:00Z", "10.52.3.18")
    update = request("vmi", "UPDATE", new, old)
    update["userInfo"] = {"username": "system:serviceaccount:harvester-system:kubevirt-handler",
                          "groups": ["system:serviceaccounts", "system:serviceaccounts:harvester-system", "system:authenticated"]}
    return update


def write_hostile_inputs(directory):
    """3 MiB requests (the API server's limit) built to be expensive, for `make bench`; written to
    a scratch directory, not committed. Each is a bare AdmissionRequest, written compact as the API
    server sends it."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    limit = 3 * 1024 * 1024 - 64 * 1024  # room for the settings and the AdmissionReview around it

    def compact(value):
        return json.dumps(value, separators=(",", ":"))

    def write_filled(name, build, unit):
        """Writes build(count) with the largest count whose request stays under the limit."""
        count = (limit - len(compact(build(0)))) // unit
        (directory / f"{name}.json").write_text(compact(build(count)))

    # A VM whose template annotation is an array of `{}` (not held to the 256 KiB annotation limit).
    write_filled("vm-3mib-template-empty-entries",
                 lambda n: request("vm", "CREATE", vm({HOOKS: "[" + ",".join(["{}"] * n) + "]"})), 3)
    # The same on a VMI, at the 256 KiB annotation limit.
    (directory / "vmi-256kib-empty-entries.json").write_text(compact(
        request("vmi", "CREATE", vmi({HOOKS: "[" + ",".join(["{}"] * (256 * 1024 // 3)) + "]"}))))
    # 32 allowed entries (the most the policy reads), padded with long args.
    write_filled("vm-3mib-32-allowed-entries",
                 lambda n: request("vm", "CREATE", vm({HOOKS: json.dumps([{"image": GPU_HOOK, "args": ["x" * n]}] * 32)})), 32)
    # Nesting off the annotation's path, beside the annotation, as deep as the API server decodes
    # (10 000 levels), the rest of the 3 MiB a long string; spliced into the text, since
    # json.dumps would recurse.
    depth = 10_000
    obj = vm({HOOKS: GPU_SIDECARS})
    obj["spec"]["template"]["spec"]["nested"] = "@"
    obj["spec"]["template"]["spec"]["padding"] = ""
    text = compact(request("vm", "CREATE", obj))
    padding = "p" * (limit - len(text) - 2 * depth)
    text = text.replace('"@"', "[" * depth + "]" * depth).replace('"padding":""', f'"padding":"{padding}"')
    (directory / "vm-3mib-deep-nesting.json").write_text(text)
    # Many keys in the template's annotations map, which the policy reads key by key.
    write_filled("vm-3mib-many-annotation-keys",
                 lambda n: request("vm", "CREATE", vm({HOOKS: GPU_SIDECARS, **{f"k{i:07d}": "" for i in range(n)}})),
                 len('"k0000000":"",'))
    # An UPDATE whose object and oldObject each carry half of it: both are read.
    def update_halves(n):
        annotations = {HOOKS: "[" + ",".join(["{}"] * n) + "]"}
        return request("vm", "UPDATE", vm(annotations), vm(annotations))
    write_filled("vm-3mib-update-unchanged-empty-entries", update_halves, 6)
    write_profile_hostile_inputs(directory)


ARGS_KEY = "qemu-commandline.hooks.example.com/args"
APERTURE = GPU_ARGS[ARGS_KEY]


def write_profile_hostile_inputs(directory):
    """Issue 21's cases: what a VM owner can make the profiles' matching cost. Each request has
    its settings beside it (`<name>.settings.json`), which bench.sh passes with it."""
    def compact(value):
        return json.dumps(value, separators=(",", ":"))

    def write_case(name, req, settings):
        (directory / f"{name}.json").write_text(compact(req))
        (directory / f"{name}.settings.json").write_text(compact(settings))

    def profiled(annotations_pattern, extra=None, args=None):
        profile = {"image": GPU_HOOK, "annotations": {ARGS_KEY: annotations_pattern}}
        if args is not None:
            profile["args"] = args
        return {"allowedImages": [GPU_HOOK], "sidecarProfiles": [profile], **(extra or {})}

    gpu = {"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}
    mmio = profiled(MMIO_PROFILE["annotations"][ARGS_KEY], args=MMIO_PROFILE["args"])
    # A running VMI's status write, its 32 entries governed by the MMIO profile, the annotation
    # 250 KB: accepted as unchanged (with a warning), and judged once, by its length.
    write_case("vmi-status-update-32-entries-250kb",
               vmi_status_update([gpu] * 32, {ARGS_KEY: APERTURE + "0" * 250_000}), mmio)
    # A VM CREATE whose annotation is 2.9 MB.
    write_case("vm-create-profiled-annotation-2.9mb",
               request("vm", "CREATE", vm({HOOKS: json.dumps([gpu]), ARGS_KEY: APERTURE + "0" * 2_900_000})), mmio)
    # An ordinary list pattern against a 243 KB list.
    write_case("vm-create-list-pattern-243kb",
               request("vm", "CREATE", vm({HOOKS: json.dumps([gpu]), ARGS_KEY: "a=b," * (243_000 // 4)})),
               profiled("(?:[A-Za-z0-9_.=/-]+,?)*"))
    # The red team's nested repetition (RE2 refuses it) in settings that skipped validate_settings,
    # on a 7 KB value: it matches nothing, at once.
    write_case("vm-create-nested-repetition-unvalidated",
               request("vm", "CREATE", vm({HOOKS: json.dumps([gpu]), ARGS_KEY: "abcdefghijklmnopqrstuvwxyz,a " * 240})),
               profiled("(?:(?:[a-z]{0,30},?){0,30} ?){0,30}"))
    # The deepest nesting RE2 allows, with the longest value its cost lets validate_settings
    # accept (1728 instructions times 257 characters), failing at its last character.
    write_case("vm-create-nested-repetition-at-budget",
               request("vm", "CREATE", vm({HOOKS: json.dumps([gpu]), ARGS_KEY: "abcdefghi," * 25 + "ab-"})),
               profiled("(?:(?:[a-z]{0,9},?){0,9} ?){0,9}", {"profileValueMaxBytes": 256}))
    # One value at the budget's edge: every state of the pattern alive at every character.
    write_case("vm-create-one-match-at-budget",
               request("vm", "CREATE", vm({HOOKS: json.dumps([gpu]), ARGS_KEY: "a" * 4096})),
               profiled("(?:[a-z]{0,59}a)*"))
    # 32 entries, each with an argument at the bound against the same costly pattern: the
    # request's budget is spent by the first, and the others fail closed.
    write_case("vm-create-32-entries-args-at-budget",
               request("vm", "CREATE", vm({HOOKS: json.dumps([{"image": GPU_HOOK, "args": [chr(ord("a") + i % 26) * 4096]} for i in range(32)])})),
               {"allowedImages": [GPU_HOOK], "sidecarProfiles": [{"image": GPU_HOOK, "args": [["(?:[a-z]{0,59}a)*"]]}]})


# Launcher Pods, rendered by KubeVirt's own template service (tests/kubevirt-render, built by
# hack/build-kubevirt-render.sh) with virt-controller's SIDECAR_SHIM_IMAGE set to SHIM.
SHIM = "quay.io/kubevirt/sidecar-shim:v1.7.0"
ONDEFINE_HOOK = {"name": "gpu-vm-hooks", "key": "onDefineDomain", "hookPath": "/usr/bin/onDefineDomain"}
DEVICE_INFO_BINDING = "registry.example.com/network/device-info-binding:v1.0.0"
POD_GVR = ("", "v1", "Pod", "pods")
KUBEVIRT_CONFIGURATION = {
    "developerConfiguration": {"featureGates": ["Sidecar"]},
    "permittedHostDevices": {"pciHostDevices": [
        {"pciVendorSelector": "10DE:26B9", "resourceName": "nvidia.com/AD102GL_L40S"}]},
    "network": {"binding": {"device-info": {"sidecarImage": DEVICE_INFO_BINDING, "downwardAPI": "device-info"}}},
}


def launcher_vmi(sidecars, binding=None):
    """The VMI virt-controller renders from: the fixtures' VM on the pod network (the renderer's
    fake clients hold no NetworkAttachmentDefinition), optionally through a binding plugin."""
    spec = vmi_spec()
    spec["networks"] = [{"name": "default", "pod": {}}]
    spec["domain"]["devices"]["interfaces"] = [
        {"name": "default", **({"binding": {"name": binding}} if binding else {"masquerade": {}})}]
    annotations = {HOOKS: json.dumps(sidecars), **GPU_ARGS} if sidecars is not None else {}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": meta("gpu-vm", annotations=annotations, labels={"harvesterhci.io/vmName": "gpu-vm"}),
            "spec": spec}


# name: (the annotation's sidecars or None, network-binding plugin or None)
LAUNCHER_CASES = {
    "gpu-hook": ([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}], None),
    "no-sidecar": (None, None),
    "shim-configmap": ([{"args": ["--version", "v1alpha3"], "configMap": ONDEFINE_HOOK}], None),
    "command": ([{"image": GPU_HOOK, "command": ["/usr/bin/qemu-commandline-hook", "--debug"]}], None),
    "pvc-shared": ([{"image": GPU_HOOK, "pvc": {"name": "gpu-vm-efivars", "volumePath": "/efivars",
                                                "sharedComputePath": "/var/run/kubevirt-private/efivars"}}], None),
    "network-binding": ([{"image": GPU_HOOK, "args": ["--version", "v1alpha3"]}], "device-info"),
}


def renderer():
    script = HERE.parent / "hack" / "build-kubevirt-render.sh"
    return subprocess.run([str(script)], check=True, capture_output=True, text=True).stdout.strip()


def render_launcher_pods(inputs):
    """Renders each {"vmi", "kubevirtConfiguration", "configMaps"} with KubeVirt's code; returns
    the Pods, or the renderer's error text for inputs KubeVirt cannot render."""
    lines = "".join(json.dumps(i) + "\n" for i in inputs)
    out = subprocess.run([renderer()], input=lines, capture_output=True, text=True, check=True,
                         env={**os.environ, "SIDECAR_SHIM_IMAGE": SHIM}).stdout
    results = []
    for line in out.splitlines():
        result = json.loads(line)
        pod = result.get("pod")
        if pod is not None:
            # Go leaves TypeMeta empty; the API server fills it in before admission.
            pod = {"apiVersion": "v1", "kind": "Pod", **pod}
        results.append(pod if pod is not None else result["error"])
    return results


def render_input(sidecars, binding=None):
    config_maps = [s["configMap"]["name"] for s in sidecars or [] if s.get("configMap")]
    vmi = launcher_vmi(sidecars, binding)
    claims = [{"metadata": {"name": v["persistentVolumeClaim"]["claimName"], "namespace": "default"},
               "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                        "resources": {"requests": {"storage": "40Gi"}}},
               "status": {"phase": "Bound", "capacity": {"storage": "40Gi"}}}
              for v in vmi["spec"]["volumes"] if "persistentVolumeClaim" in v]
    return {"vmi": vmi, "kubevirtConfiguration": KUBEVIRT_CONFIGURATION, "configMaps": config_maps,
            "persistentVolumeClaims": claims}


def write_launcher_pods():
    """test_data/launcher-pod-*.json, and the launcher Pod benchmark inputs."""
    pods = dict(zip(LAUNCHER_CASES, render_launcher_pods(
        [render_input(*case) for case in LAUNCHER_CASES.values()])))
    for name, pod in pods.items():
        if isinstance(pod, str):
            raise SystemExit(f"KubeVirt could not render the launcher Pod {name!r}: {pod}")
        write(f"launcher-pod-create-{name}", request(POD_GVR, "CREATE", pod))
    # UPDATE: the image of hook-sidecar-0 swapped (what `kubectl edit` of a Pod may do).
    old = pods["gpu-hook"]
    swapped = copy.deepcopy(old)
    next(c for c in swapped["spec"]["containers"] if c["name"] == "hook-sidecar-0")["image"] = \
        "docker.io/attacker/qemu-hook:latest"
    write("launcher-pod-update-image-swap", request(POD_GVR, "UPDATE", swapped, old))
    # UPDATE that leaves the containers alone (a label added, as virt-handler and others do).
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["labels"]["kubevirt.io/nodeName"] = "harvester-node-1"
    write("launcher-pod-update-unchanged", request(POD_GVR, "UPDATE", relabelled, old))
    # UPDATE that takes the launcher label away, after which the objectSelector would not match.
    unlabelled = copy.deepcopy(old)
    del unlabelled["metadata"]["labels"]["kubevirt.io"]
    write("launcher-pod-update-removes-label", request(POD_GVR, "UPDATE", unlabelled, old))
    bench = HERE.parent / "e2e-tests" / "bench"
    write_to(bench / "pod-launcher-no-sidecar.json", request(POD_GVR, "CREATE", pods["no-sidecar"]))
    # A Pod that is not a launcher, of the same size: the launcher Pod without its label.
    other = copy.deepcopy(pods["no-sidecar"])
    other["metadata"]["labels"] = {"app": "gpu-exporter"}
    write_to(bench / "pod-not-launcher.json", request(POD_GVR, "CREATE", other))


def write_to(path, value):
    path.write_text(json.dumps(value, indent=2) + "\n")


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["--hostile"]:
        write_hostile_inputs(sys.argv[2])
    else:
        main()
