// The template service as virt-controller v1.6 and v1.7 build it (pkg/virt-controller/watch/
// application.go, v1.7.0, lines 663-685); gomock is go.uber.org/mock from v1.6.

package main

import (
	"go.uber.org/mock/gomock"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	v1 "kubevirt.io/api/core/v1"
	"kubevirt.io/client-go/kubecli"
	fakenetworkclient "kubevirt.io/client-go/networkattachmentdefinitionclient/fake"

	"kubevirt.io/kubevirt/pkg/network/netbinding"
	"kubevirt.io/kubevirt/pkg/virt-controller/services"
)

func newVirtClient(k8sClient *k8sfake.Clientset, networkClient *fakenetworkclient.Clientset) kubecli.KubevirtClient {
	virtClient := kubecli.NewMockKubevirtClient(gomock.NewController(reporter{}))
	virtClient.EXPECT().CoreV1().Return(k8sClient.CoreV1()).AnyTimes()
	virtClient.EXPECT().NetworkClient().Return(networkClient).AnyTimes()
	return virtClient
}

func newTemplateService(p templateServiceParams) launchManifestRenderer {
	return services.NewTemplateService(p.launcherImage,
		240,
		"/var/run/kubevirt",
		"/var/run/kubevirt-ephemeral-disks",
		"/var/run/kubevirt/container-disks",
		v1.HotplugDiskDir,
		"",
		p.pvcCache,
		p.virtClient,
		p.clusterConfig,
		107,
		p.exporterImage,
		cache.NewStore(cache.MetaNamespaceKeyFunc),
		cache.NewStore(cache.MetaNamespaceKeyFunc),
		services.WithSidecarCreator(p.sidecarCreators[0]),
		services.WithSidecarCreator(p.sidecarCreators[1]),
		services.WithNetBindingPluginMemoryCalculator(netbinding.MemoryCalculator{}),
	)
}
