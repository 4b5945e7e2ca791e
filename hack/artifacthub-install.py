#!/usr/bin/env python3
"""Replaces the `install` text that `kwctl scaffold artifacthub` writes into artifacthub-pkg.yml.

kwctl suggests `kwctl scaffold manifest`, whose ClusterAdmissionPolicy takes every rule of the
metadata, the `pods` rule included, without the launcher Pods' objectSelector: deployed as is it
would send every Pod of the cluster through the policy, with failurePolicy Fail. The install text
gives the chart instead (both policies with the right rules, and the sync job) and the runbook.

Usage: hack/artifacthub-install.py artifacthub-pkg.yml   (rewrites the file in place)
The version and the image come from the file itself (`version`, `containersImages[0].image`).
"""
import re
import sys

path = sys.argv[1]
lines = open(path, encoding="utf-8").read().split("\n")

version = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("version:"))
image = next(l.split("image:", 1)[1].strip() for l in lines if l.strip().startswith("image:"))
home = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("homeURL:"))
oci = image.rsplit(":", 1)[0]
registry = oci.rsplit("/", 1)[0]

install = f"""Install the policy with its Helm chart, which renders the ClusterAdmissionPolicy for VMs and, with
`launcherPodPolicy.enabled=true`, the one for virt-launcher Pods (only Pods labelled
`kubevirt.io=virt-launcher`), and the job that keeps their allow-list equal to Harvester's
`whitelisted-sidecars` Setting. Kubewarden must be installed first, here in `kubewarden`:
```console
helm install hook-sidecar-policy oci://{registry}/charts/hook-sidecar-policy --version {version} --namespace kubewarden
```
Then follow the runbook, which turns the Sidecar feature gate on only behind the policy in
protect mode: {home}/blob/v{version}/docs/runbook.md

To try the module locally, pull it with kwctl:
```console
kwctl pull {image}
```
Do not deploy the ClusterAdmissionPolicy that kwctl's manifest scaffolding writes for this module
as it is: it takes every rule of the metadata, the `pods` rule included, without an
objectSelector, and would send every Pod of the cluster through the policy."""

out = []
i = 0
while i < len(lines):
    if lines[i].startswith("install:"):
        out.append("install: |")
        out.extend("  " + l if l else "" for l in install.split("\n"))
        i += 1
        while i < len(lines) and (lines[i].startswith("  ") or lines[i] == ""):
            i += 1
        continue
    out.append(lines[i])
    i += 1
open(path, "w", encoding="utf-8").write("\n".join(out))
