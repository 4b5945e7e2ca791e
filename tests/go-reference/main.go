// Parses image references exactly as the kubelet and containerd do (github.com/distribution/reference,
// ParseDockerRef: ParseNormalizedNamed, then `latest` when there is neither tag nor digest) and
// prints the components the policy compares.
//
// Input: one reference per line, JSON-encoded as a string. Output: one JSON line each,
// {"error": "..."} or {"domain": ..., "path": ..., "tag": ..., "digest": ...}.
package main

import (
	"bufio"
	// go-digest knows only the algorithms whose hash is linked in, as in containerd and the kubelet.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"os"

	"github.com/distribution/reference"
)

type result struct {
	Error  string  `json:"error,omitempty"`
	Domain string  `json:"domain,omitempty"`
	Path   string  `json:"path,omitempty"`
	Tag    *string `json:"tag,omitempty"`
	Digest *string `json:"digest,omitempty"`
}

func parse(text string) result {
	named, err := reference.ParseNormalizedNamed(text)
	if err != nil {
		return result{Error: err.Error()}
	}
	// ParseDockerRef drops the tag of a reference with both tag and digest (the digest is what is
	// pulled); the policy keeps both and compares by digest, so the tag is read before that.
	var r result
	r.Domain, r.Path = reference.Domain(named), reference.Path(named)
	if tagged, ok := named.(reference.Tagged); ok {
		tag := tagged.Tag()
		r.Tag = &tag
	}
	if digested, ok := named.(reference.Digested); ok {
		digest := digested.Digest().String()
		r.Digest = &digest
	}
	if r.Tag == nil && r.Digest == nil {
		tag := "latest"
		r.Tag = &tag
	}
	return r
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var text string
		if err := json.Unmarshal(in.Bytes(), &text); err != nil {
			fmt.Fprintf(os.Stderr, "bad input line: %v\n", err)
			os.Exit(2)
		}
		line, err := json.Marshal(parse(text))
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
