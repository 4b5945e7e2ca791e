// Plugins, from v1.9: what virt-operator installs for them, and the domain hooks virt-launcher
// applies, each with KubeVirt's own code.

package main

import (
	"encoding/json"
	"encoding/xml"
	"io"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "kubevirt.io/api/core/v1"
	pluginv1alpha1 "kubevirt.io/api/plugin/v1alpha1"

	virtwrapapi "kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/plugins"
	"kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components"
	vap "kubevirt.io/kubevirt/pkg/virt-operator/resource/generate/components/validatingadmissionpolicies"
)

// printManifests prints the Plugin CRD (and the VirtualMachine and VirtualMachineInstance CRDs
// beside it) and the ValidatingAdmissionPolicies and bindings virt-operator adds when the Plugins
// gate is on (pkg/virt-operator/resource/generate/install/strategy.go, v1.9.0, lines 495-511 and
// 636-647), as one List for `kubectl apply -f`.
func printManifests(out io.Writer) error {
	var items []any
	for _, crd := range []func() (*extv1.CustomResourceDefinition, error){
		components.NewPluginCrd, components.NewVirtualMachineCrd, components.NewVirtualMachineInstanceCrd,
	} {
		object, err := crd()
		if err != nil {
			return err
		}
		object.APIVersion, object.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
		items = append(items, object)
	}
	// virt-operator's objects say apiVersion "v1"; the API server needs the group.
	policies := []*admissionregistrationv1.ValidatingAdmissionPolicy{
		vap.NewPluginValidatingAdmissionPolicy(), vap.NewPluginWarningAdmissionPolicy(),
		vap.NewSidecarSubPathValidatingAdmissionPolicy(), vap.NewPluginSocketPathValidatingAdmissionPolicy(),
	}
	bindings := []*admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		vap.NewPluginValidatingAdmissionPolicyBinding(), vap.NewPluginWarningAdmissionPolicyBinding(),
		vap.NewSidecarSubPathValidatingAdmissionPolicyBinding(), vap.NewPluginSocketPathValidatingAdmissionPolicyBinding(),
	}
	for _, policy := range policies {
		policy.APIVersion = admissionregistrationv1.SchemeGroupVersion.String()
		items = append(items, policy)
	}
	for _, binding := range bindings {
		binding.APIVersion = admissionregistrationv1.SchemeGroupVersion.String()
		items = append(items, binding)
	}
	return json.NewEncoder(out).Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
}

type domainHooksInput struct {
	Plugins []pluginv1alpha1.Plugin   `json:"plugins"`
	VMI     v1.VirtualMachineInstance `json:"vmi"`
	// Domain is the libvirt domain XML before the hooks.
	Domain string `json:"domain"`
}

type domainHooksOutput struct {
	Domain string `json:"domain,omitempty"`
	Error  string `json:"error,omitempty"`
}

// applyDomainHooks reads one {"plugins", "vmi", "domain"} and writes {"domain": <XML>} or
// {"error"}: the domain after the Plugins' domain hooks, applied by virt-launcher's own pipeline
// (pkg/virt-launcher/virtwrap/plugins/pipeline.go, ApplyDomainHooks, at a boot).
func applyDomainHooks(in io.Reader, out io.Writer) error {
	var input domainHooksInput
	if err := json.NewDecoder(in).Decode(&input); err != nil {
		return err
	}
	var result domainHooksOutput
	spec := &virtwrapapi.DomainSpec{}
	if err := xml.Unmarshal([]byte(input.Domain), spec); err != nil {
		result.Error = "cannot read the domain: " + err.Error()
	} else if _, domain, err := plugins.ApplyDomainHooks(input.Plugins, &input.VMI, spec, pluginv1alpha1.InvocationContextBoot); err != nil {
		result.Error = err.Error()
	} else {
		result.Domain = domain
	}
	return json.NewEncoder(out).Encode(result)
}
