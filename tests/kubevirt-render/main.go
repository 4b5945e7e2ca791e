// kubevirt-render renders virt-launcher Pods with KubeVirt's own template service, so that the
// policy's Pod check is tested against the Pods virt-controller really creates. It is built once
// per supported KubeVirt release (hack/build-kubevirt-render.sh; main.go plus that release's
// service_<minor>.go and plugins_<minor>.go).
//
// Without an argument, it reads JSON lines on stdin, each {"vmi": <VirtualMachineInstance>,
// "kubevirtConfiguration": <KubeVirtConfiguration>, "configMaps": ["name", ...],
// "persistentVolumeClaims": [<PVC>, ...]} (the ConfigMaps and the claims of the VMI's volumes that
// exist), and writes one JSON line per input: {"pod": <Pod>} or {"error": "..."}. The
// sidecar-shim image is whatever SIDECAR_SHIM_IMAGE says, as for virt-controller.
//
// The template service is built as virt-controller builds it (pkg/virt-controller/watch/
// application.go, v1.7.0, lines 664-685): the annotation's sidecars and the network-binding
// plugins' sidecars, each through its own sidecar creator. The clients are KubeVirt's fakes, as in
// its own template_test.go (v1.7.0, lines 117-177): the renderer only reads ConfigMaps (to name
// the volume) and NetworkAttachmentDefinitions from them.
//
// Subcommands: `version` (the kubevirt.io/kubevirt it was built against), `decode` (annotations
// decoded by the release's own hooks.UnmarshalHookSidecarList), and from v1.9 `manifests` (what
// virt-operator installs for Plugins) and `domain-hooks` (Plugins' domain hooks applied by
// virt-launcher's pipeline).
//go:debug randseednop=0

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime/debug"

	k8sv1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/client-go/kubecli"
	fakenetworkclient "kubevirt.io/client-go/networkattachmentdefinitionclient/fake"

	"kubevirt.io/kubevirt/pkg/hooks"
	"kubevirt.io/kubevirt/pkg/network/netbinding"
	"kubevirt.io/kubevirt/pkg/testutils"
	virtconfig "kubevirt.io/kubevirt/pkg/virt-config"
	"kubevirt.io/kubevirt/pkg/virt-controller/services"
)

type input struct {
	VMI                    v1.VirtualMachineInstance     `json:"vmi"`
	KubeVirtConfiguration  v1.KubeVirtConfiguration      `json:"kubevirtConfiguration"`
	ConfigMaps             []string                      `json:"configMaps"`
	PersistentVolumeClaims []k8sv1.PersistentVolumeClaim `json:"persistentVolumeClaims"`
}

type output struct {
	Pod   *k8sv1.Pod `json:"pod,omitempty"`
	Error string     `json:"error,omitempty"`
}

// reporter lets gomock fail loudly outside of `go test`.
type reporter struct{}

func (reporter) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (reporter) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// launchManifestRenderer is what the template service of every version offers (an interface up
// to v1.6, a struct since v1.7).
type launchManifestRenderer interface {
	RenderLaunchManifest(vmi *v1.VirtualMachineInstance) (*k8sv1.Pod, error)
}

// templateServiceParams are the arguments of services.NewTemplateService that the renderer sets;
// the version files (service_*.go) pass them with the constants virt-controller uses.
type templateServiceParams struct {
	launcherImage   string
	exporterImage   string
	pvcCache        cache.Store
	virtClient      kubecli.KubevirtClient
	clusterConfig   *virtconfig.ClusterConfig
	sidecarCreators []services.SidecarCreatorFunc
}

func render(in input) (*k8sv1.Pod, error) {
	k8sClient := k8sfake.NewSimpleClientset()
	for _, name := range in.ConfigMaps {
		cm := &k8sv1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: in.VMI.Namespace}}
		if _, err := k8sClient.CoreV1().ConfigMaps(in.VMI.Namespace).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
	}
	virtClient := newVirtClient(k8sClient, fakenetworkclient.NewSimpleClientset())

	config, _, _ := testutils.NewFakeClusterConfigUsingKVConfig(&in.KubeVirtConfiguration)
	pvcCache := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for i := range in.PersistentVolumeClaims {
		if err := pvcCache.Add(&in.PersistentVolumeClaims[i]); err != nil {
			return nil, err
		}
	}
	version := kubevirtVersion()
	svc := newTemplateService(templateServiceParams{
		launcherImage: "quay.io/kubevirt/virt-launcher:" + version,
		exporterImage: "quay.io/kubevirt/virt-exportserver:" + version,
		pvcCache:      pvcCache,
		virtClient:    virtClient,
		clusterConfig: config,
		sidecarCreators: []services.SidecarCreatorFunc{
			func(vmi *v1.VirtualMachineInstance, _ *v1.KubeVirtConfiguration) (hooks.HookSidecarList, error) {
				return hooks.UnmarshalHookSidecarList(vmi)
			},
			netbinding.NetBindingPluginSidecarList,
		},
	})
	return svc.RenderLaunchManifest(&in.VMI)
}

// decodeAnnotations reads one JSON string per line, a hooks.kubevirt.io/hookSidecars value, and
// writes what virt-controller decodes from it (hooks.UnmarshalHookSidecarList of a VMI that carries
// it): {"sidecars": [...]} or {"error": "..."}, as tests/go-decoder answers.
func decodeAnnotations(in io.Reader, out io.Writer) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 1<<20), 1<<26)
	encoder := json.NewEncoder(out)
	for scanner.Scan() {
		var value string
		if err := json.Unmarshal(scanner.Bytes(), &value); err != nil {
			return fmt.Errorf("bad input line: %w", err)
		}
		vmi := &v1.VirtualMachineInstance{}
		vmi.Annotations = map[string]string{hooks.HookSidecarListAnnotationName: value}
		var answer struct {
			Error    string                `json:"error,omitempty"`
			Sidecars hooks.HookSidecarList `json:"sidecars"`
		}
		if list, err := hooks.UnmarshalHookSidecarList(vmi); err != nil {
			answer.Error = err.Error()
		} else {
			answer.Sidecars = list
		}
		if err := encoder.Encode(answer); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// kubevirtVersion is the version of kubevirt.io/kubevirt this binary was built against.
func kubevirtVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "kubevirt.io/kubevirt" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func main() {
	if len(os.Args) == 2 {
		switch os.Args[1] {
		case "version":
			fmt.Println(kubevirtVersion())
			return
		case "manifests":
			if err := printManifests(os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		case "decode":
			if err := decodeAnnotations(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		case "domain-hooks":
			if err := applyDomainHooks(os.Stdin, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			return
		}
	}
	if len(os.Args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: kubevirt-render [version|decode|manifests|domain-hooks] (without an argument: render stdin's VMIs)")
		os.Exit(2)
	}
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	encoder := json.NewEncoder(os.Stdout)
	for scanner.Scan() {
		var in input
		var out output
		// The template service jitters virt-launcher's --qemu-timeout with math/rand (template.go
		// v1.7.0, 307-311): the seed, the same for every input, makes a Pod depend on its VMI and
		// configuration only, not on what was rendered before it.
		rand.Seed(1)
		if err := json.Unmarshal(scanner.Bytes(), &in); err != nil {
			out.Error = "cannot read the input line: " + err.Error()
		} else if pod, err := render(in); err != nil {
			out.Error = err.Error()
		} else {
			out.Pod = pod
		}
		if err := encoder.Encode(out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := scanner.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
