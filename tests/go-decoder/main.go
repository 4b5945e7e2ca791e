// Decodes hook-sidecar annotations exactly as virt-controller does (encoding/json into KubeVirt's
// HookSidecarList shape, pkg/hooks/hooks.go of KubeVirt 1.4 to 1.9: tests/kubevirt_versions.rs
// checks, for each supported release, that the release's own decoder decodes the hostile corpus
// as this copy does) and prints what it decoded.
//
// Input: one annotation value per line, JSON-encoded as a string. Output: one JSON line each,
// {"error": "..."} or {"sidecars": [...]}.
//
// With `-generate N`, it instead writes N annotations as KubeVirt's own code would write them
// (json.Marshal of generated HookSidecarList values; see generate.go), each with what it needs
// from the policy's settings.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

type ConfigMap struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	HookPath string `json:"hookPath"`
}

type PVC struct {
	Name              string `json:"name"`
	VolumePath        string `json:"volumePath"`
	SharedComputePath string `json:"sharedComputePath"`
}

type HookSidecar struct {
	Image           string     `json:"image,omitempty"`
	ImagePullPolicy string     `json:"imagePullPolicy"`
	Command         []string   `json:"command,omitempty"`
	Args            []string   `json:"args,omitempty"`
	ConfigMap       *ConfigMap `json:"configMap,omitempty"`
	PVC             *PVC       `json:"pvc,omitempty"`
	// Tagged "-" in every KubeVirt release so far: the annotation cannot set it. (v1.9 adds
	// NetworkBindingPluginName, also "-".)
	DownwardAPI string `json:"-"`
}

type HookSidecarList []HookSidecar

type result struct {
	Error    string          `json:"error,omitempty"`
	Sidecars HookSidecarList `json:"sidecars"`
}

func main() {
	generateCount := flag.Int("generate", 0, "write this many marshalled HookSidecarLists instead of decoding")
	seed := flag.Int64("seed", 1, "seed of the generator")
	flag.Parse()
	if *generateCount > 0 {
		if err := generate(os.Stdout, *generateCount, *seed); err != nil {
			fmt.Fprintf(os.Stderr, "generating: %v\n", err)
			os.Exit(2)
		}
		return
	}
	decode()
}

func decode() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var annotation string
		if err := json.Unmarshal(in.Bytes(), &annotation); err != nil {
			fmt.Fprintf(os.Stderr, "bad input line: %v\n", err)
			os.Exit(2)
		}
		var list HookSidecarList
		var r result
		if err := json.Unmarshal([]byte(annotation), &list); err != nil {
			r.Error = err.Error()
		} else {
			r.Sidecars = list
		}
		line, err := json.Marshal(r)
		if err != nil {
			fmt.Fprintf(os.Stderr, "encoding: %v\n", err)
			os.Exit(2)
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "reading: %v\n", err)
		os.Exit(2)
	}
}
