#!/bin/sh
# onDefineDomain hook for KubeVirt's sidecar-shim (the configMap entry of the README's GPU
# example): the shim passes --vmi <VMI JSON> --domain <domain XML> and runs the domain XML this
# prints. It adds OVMF's 64-bit MMIO aperture, for GPUs with large BARs.
printf '%s' "$4" | sed 's|</domain>|<qemu:commandline xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"><qemu:arg value="-fw_cfg"/><qemu:arg value="name=opt/ovmf/X-PciMmio64Mb,string=65536"/></qemu:commandline></domain>|'
