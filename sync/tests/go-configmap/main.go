// go-configmap writes the policies ConfigMap of a PolicyServer as kubewarden-controller v1.35.0
// writes it, from the objects as the API server serves them: the oracle of the sync job's size
// bound (sync/src/policy_server_config.rs).
//
// Copied from kubewarden-controller v1.35.0 (commit 9462fe11de6ba81404ef0cb88fc0346f877d04a1),
// internal/controller/policyserver_controller_configmap.go: policyServerConfigEntry and its
// MarshalJSON, policyGroupMemberWithContext, policyServerSourcesEntry, buildPoliciesMap,
// buildPolicyGroupMembersWithContext, hostCapabilitiesForPolicy, buildSourcesMap, and the
// json.Marshal calls of updateConfigMapData; the policies are decoded with the JSON names of
// api/policies/v1 and their Get* methods' choices per kind (what each kind returns for module,
// settings, context-aware resources and timeoutEvalSeconds). apimachinery's RawExtension
// (runtime/extension.go) and NamespacedName (types/namespacedname.go) are copied for their JSON
// behaviour, so that the program needs only Go's standard library.
//
// Input (stdin): {"policyServer": <PolicyServer or null>, "policies": [<object with kind>, ...]}.
// Output (stdout): {"policies.yml": "...", "sources.yml": "..."}.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// ---- k8s.io/apimachinery v0.34

type RawExtension struct {
	Raw []byte `json:"-"`
}

func (re *RawExtension) UnmarshalJSON(in []byte) error {
	if re == nil {
		return errors.New("runtime.RawExtension: UnmarshalJSON on nil pointer")
	}
	if !bytes.Equal(in, []byte("null")) {
		re.Raw = append(re.Raw[0:0], in...)
	}
	return nil
}

func (re RawExtension) MarshalJSON() ([]byte, error) {
	if re.Raw == nil {
		return []byte("null"), nil
	}
	return re.Raw, nil
}

type NamespacedName struct {
	Namespace string
	Name      string
}

// ---- api/policies/v1

type ContextAwareResource struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type PolicyGroupMember struct {
	Module             string       `json:"module"`
	Settings           RawExtension `json:"settings,omitempty"`
	TimeoutEvalSeconds *int32       `json:"timeoutEvalSeconds,omitempty"`
}

type PolicyGroupMemberWithContext struct {
	PolicyGroupMember     `json:""`
	ContextAwareResources []ContextAwareResource `json:"contextAwareResources,omitempty"`
}

type policyObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Module                string                                  `json:"module"`
		Mode                  string                                  `json:"mode"`
		Mutating              bool                                    `json:"mutating"`
		Settings              RawExtension                            `json:"settings"`
		ContextAwareResources []ContextAwareResource                  `json:"contextAwareResources"`
		Message               string                                  `json:"message"`
		TimeoutEvalSeconds    *int32                                  `json:"timeoutEvalSeconds"`
		Expression            string                                  `json:"expression"`
		Policies              map[string]PolicyGroupMemberWithContext `json:"policies"`
	} `json:"spec"`
}

type policyServer struct {
	Spec struct {
		InsecureSources                []string            `json:"insecureSources,omitempty"`
		SourceAuthorities              map[string][]string `json:"sourceAuthorities,omitempty"`
		NamespacedPoliciesCapabilities []string            `json:"namespacedPoliciesCapabilities,omitempty"`
	} `json:"spec"`
}

// ---- internal/controller/policyserver_controller_configmap.go

const dataType string = "Data"

type policyGroupMemberWithContext struct {
	Module                string                 `json:"module"`
	Settings              RawExtension           `json:"settings,omitempty"`
	ContextAwareResources []ContextAwareResource `json:"contextAwareResources,omitempty"`
	TimeoutEvalSeconds    *int32                 `json:"timeoutEvalSeconds,omitempty"`
	HostCapabilities      []string               `json:"hostCapabilities"`
}

type policyServerConfigEntry struct {
	NamespacedName        NamespacedName                          `json:"namespacedName"`
	Module                string                                  `json:"module,omitempty"`
	PolicyMode            string                                  `json:"policyMode"`
	AllowedToMutate       bool                                    `json:"allowedToMutate,omitempty"`
	ContextAwareResources []ContextAwareResource                  `json:"contextAwareResources,omitempty"`
	Settings              RawExtension                            `json:"settings,omitempty"`
	Message               string                                  `json:"message,omitempty"`
	TimeoutEvalSeconds    *int32                                  `json:"timeoutEvalSeconds,omitempty"`
	HostCapabilities      []string                                `json:"hostCapabilities"`
	Policies              map[string]policyGroupMemberWithContext `json:"policies,omitempty"`
	Expression            string                                  `json:"expression,omitempty"`
}

func (p policyServerConfigEntry) MarshalJSON() ([]byte, error) {
	if len(p.Policies) > 0 {
		bytes, err := json.Marshal(struct {
			NamespacedName NamespacedName                          `json:"namespacedName"`
			PolicyMode     string                                  `json:"policyMode"`
			Policies       map[string]policyGroupMemberWithContext `json:"policies"`
			Expression     string                                  `json:"expression"`
			Message        string                                  `json:"message"`
		}{
			NamespacedName: p.NamespacedName,
			PolicyMode:     p.PolicyMode,
			Policies:       p.Policies,
			Expression:     p.Expression,
			Message:        p.Message,
		})
		if err != nil {
			return nil, errors.New("failed to encode policy server configuration")
		}
		return bytes, nil
	}

	bytes, err := json.Marshal(struct {
		NamespacedName        NamespacedName         `json:"namespacedName"`
		Module                string                 `json:"module"`
		PolicyMode            string                 `json:"policyMode"`
		AllowedToMutate       bool                   `json:"allowedToMutate"`
		ContextAwareResources []ContextAwareResource `json:"contextAwareResources,omitempty"`
		Settings              RawExtension           `json:"settings,omitempty"`
		Message               string                 `json:"message,omitempty"`
		TimeoutEvalSeconds    *int32                 `json:"timeoutEvalSeconds,omitempty"`
		HostCapabilities      []string               `json:"hostCapabilities"`
	}{
		NamespacedName:        p.NamespacedName,
		Module:                p.Module,
		PolicyMode:            p.PolicyMode,
		AllowedToMutate:       p.AllowedToMutate,
		ContextAwareResources: p.ContextAwareResources,
		Settings:              p.Settings,
		Message:               p.Message,
		TimeoutEvalSeconds:    p.TimeoutEvalSeconds,
		HostCapabilities:      p.HostCapabilities,
	})
	if err != nil {
		return nil, errors.New("failed to encode policy server configuration")
	}
	return bytes, nil
}

type policyServerSourceAuthority struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type policyServerSourcesEntry struct {
	InsecureSources   []string                                 `json:"insecure_sources,omitempty"`
	SourceAuthorities map[string][]policyServerSourceAuthority `json:"source_authorities,omitempty"`
}

func buildPolicyGroupMembersWithContext(policies map[string]PolicyGroupMemberWithContext, hostCaps []string) map[string]policyGroupMemberWithContext {
	policyGroupMembers := map[string]policyGroupMemberWithContext{}
	for name, policy := range policies {
		policyGroupMembers[name] = policyGroupMemberWithContext{
			Module:                policy.Module,
			Settings:              policy.Settings,
			ContextAwareResources: policy.ContextAwareResources,
			TimeoutEvalSeconds:    policy.TimeoutEvalSeconds,
			HostCapabilities:      hostCaps,
		}
	}
	return policyGroupMembers
}

func hostCapabilitiesForPolicy(namespace string, server *policyServer) []string {
	if namespace == "" {
		return []string{"*"}
	}
	if server != nil && server.Spec.NamespacedPoliciesCapabilities != nil {
		return server.Spec.NamespacedPoliciesCapabilities
	}
	return []string{"*"}
}

// buildPoliciesMap, with each kind's Get* methods inlined.
func buildPoliciesMap(policies []policyObject, server *policyServer) map[string]policyServerConfigEntry {
	out := map[string]policyServerConfigEntry{}
	for _, p := range policies {
		hostCaps := hostCapabilitiesForPolicy(p.Metadata.Namespace, server)
		entry := policyServerConfigEntry{
			NamespacedName:   NamespacedName{Namespace: p.Metadata.Namespace, Name: p.Metadata.Name},
			PolicyMode:       p.Spec.Mode,
			Message:          p.Spec.Message,
			HostCapabilities: hostCaps,
		}
		var unique string
		switch p.Kind {
		case "ClusterAdmissionPolicy":
			unique = "clusterwide-" + p.Metadata.Name
			entry.Module = p.Spec.Module
			entry.AllowedToMutate = p.Spec.Mutating
			entry.Settings = p.Spec.Settings
			entry.ContextAwareResources = p.Spec.ContextAwareResources
			entry.TimeoutEvalSeconds = p.Spec.TimeoutEvalSeconds
		case "AdmissionPolicy":
			unique = "namespaced-" + p.Metadata.Namespace + "-" + p.Metadata.Name
			entry.Module = p.Spec.Module
			entry.AllowedToMutate = p.Spec.Mutating
			entry.Settings = p.Spec.Settings
			entry.ContextAwareResources = []ContextAwareResource{}
			entry.TimeoutEvalSeconds = p.Spec.TimeoutEvalSeconds
		case "AdmissionPolicyGroup":
			unique = "namespaced-group-" + p.Metadata.Namespace + "-" + p.Metadata.Name
			entry.ContextAwareResources = []ContextAwareResource{}
			members := map[string]PolicyGroupMemberWithContext{}
			for name, member := range p.Spec.Policies {
				members[name] = PolicyGroupMemberWithContext{PolicyGroupMember: member.PolicyGroupMember, ContextAwareResources: []ContextAwareResource{}}
			}
			entry.Policies = buildPolicyGroupMembersWithContext(members, hostCaps)
			entry.Expression = p.Spec.Expression
		case "ClusterAdmissionPolicyGroup":
			unique = "clusterwide-group-" + p.Metadata.Name
			entry.ContextAwareResources = []ContextAwareResource{}
			entry.Policies = buildPolicyGroupMembersWithContext(p.Spec.Policies, hostCaps)
			entry.Expression = p.Spec.Expression
		default:
			fmt.Fprintf(os.Stderr, "unknown kind %q\n", p.Kind)
			os.Exit(2)
		}
		out[unique] = entry
	}
	return out
}

func buildSourcesMap(server *policyServer) policyServerSourcesEntry {
	sourcesEntry := policyServerSourcesEntry{}
	if server != nil {
		sourcesEntry.InsecureSources = server.Spec.InsecureSources
	}
	if sourcesEntry.InsecureSources == nil {
		sourcesEntry.InsecureSources = make([]string, 0)
	}
	sourcesEntry.SourceAuthorities = make(map[string][]policyServerSourceAuthority)
	if server != nil {
		for uri, certs := range server.Spec.SourceAuthorities {
			sourcesEntry.SourceAuthorities[uri] = make([]policyServerSourceAuthority, 0)
			for _, cert := range certs {
				sourcesEntry.SourceAuthorities[uri] = append(sourcesEntry.SourceAuthorities[uri],
					policyServerSourceAuthority{Type: dataType, Data: cert})
			}
		}
	}
	return sourcesEntry
}

func main() {
	var input struct {
		PolicyServer *policyServer  `json:"policyServer"`
		Policies     []policyObject `json:"policies"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	policiesYML, err := json.Marshal(buildPoliciesMap(input.Policies, input.PolicyServer))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sourcesYML, err := json.Marshal(buildSourcesMap(input.PolicyServer))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]string{"policies.yml": string(policiesYML), "sources.yml": string(sourcesYML)})
	os.Stdout.Write(out)
}
