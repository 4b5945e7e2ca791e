package main

import (
	"bufio"
	"encoding/json"
	"io"
	"math/rand"
)

// generated is one marshalled HookSidecarList and what the policy's settings must allow for it.
type generated struct {
	Annotation string `json:"annotation"`
	// Images written in the entries; "" stands for KubeVirt's sidecar-shim.
	Images            []string `json:"images"`
	Command           bool     `json:"command"`
	ConfigMap         bool     `json:"configMap"`
	PVC               bool     `json:"pvc"`
	SharedComputePath bool     `json:"sharedComputePath"`
}

// Images as a VM owner would write them, in the forms the runtime accepts.
var images = []string{
	"",
	"registry.example.com/kubevirt-hooks/qemu-commandline:v1.2.0",
	"registry.example.com:5000/hooks/smbios@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"busybox:1.36",
	"index.docker.io/library/alpine:3.20",
	"ghcr.io/org/team/hook:v1",
	"localhost:5000/hook",
	"quay.io/kubevirt/example-hook-sidecar:v1.4.0",
}

// Words that json.Marshal escapes or that look like JSON, in args and names.
var words = []string{
	"--version", "v1alpha3", "<qemu:arg value='-fw_cfg'/>", "a&b", "\u2028", "\"quoted\"",
	"{\"image\":\"evil:1\"}", "-fw_cfg name=opt/ovmf/X-PciMmio64Mb,string=65536", "ſ", "\u212A",
}

func pick(r *rand.Rand, items []string) string { return items[r.Intn(len(items))] }

func stringList(r *rand.Rand) []string {
	switch r.Intn(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	list := make([]string, 1+r.Intn(3))
	for i := range list {
		list[i] = pick(r, words)
	}
	return list
}

// name is never empty: an empty ConfigMap or claim name makes the VM unable to start, which the
// policy rejects whatever the switches say.
func name(r *rand.Rand) string { return "data-" + pick(r, []string{"a", "b", "c&d", "<e>"}) }

func sidecar(r *rand.Rand, g *generated) HookSidecar {
	s := HookSidecar{
		Image:           pick(r, images),
		ImagePullPolicy: pick(r, []string{"", "", "Always", "IfNotPresent", "Never"}),
		Command:         stringList(r),
		Args:            stringList(r),
	}
	g.Images = append(g.Images, s.Image)
	if len(s.Command) > 0 {
		g.Command = true
	}
	if r.Intn(4) == 0 {
		s.ConfigMap = &ConfigMap{Name: name(r), Key: pick(r, []string{"", "hook.sh"}), HookPath: pick(r, []string{"", "/usr/bin/onDefineDomain"})}
		g.ConfigMap = true
	}
	if r.Intn(4) == 0 {
		s.PVC = &PVC{Name: name(r), VolumePath: pick(r, []string{"", "/data"}), SharedComputePath: pick(r, []string{"", "", "/var/run/shared"})}
		g.PVC = true
		g.SharedComputePath = g.SharedComputePath || s.PVC.SharedComputePath != ""
	}
	return s
}

func generate(w io.Writer, count int, seed int64) error {
	r := rand.New(rand.NewSource(seed))
	out := bufio.NewWriter(w)
	for i := 0; i < count; i++ {
		g := generated{Images: []string{}}
		var list HookSidecarList
		if r.Intn(10) > 0 {
			list = HookSidecarList{}
			for n := r.Intn(4); n > 0; n-- {
				list = append(list, sidecar(r, &g))
			}
		}
		annotation, err := json.Marshal(list)
		if err != nil {
			return err
		}
		g.Annotation = string(annotation)
		line, err := json.Marshal(g)
		if err != nil {
			return err
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Flush()
}
