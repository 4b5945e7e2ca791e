// Before v1.9, KubeVirt has no Plugins.

package main

import (
	"fmt"
	"io"
)

func printManifests(io.Writer) error {
	return fmt.Errorf("kubevirt.io/kubevirt %s has no Plugin CRD (Plugins came in v1.9)", kubevirtVersion())
}

func applyDomainHooks(io.Reader, io.Writer) error {
	return fmt.Errorf("kubevirt.io/kubevirt %s has no Plugins (they came in v1.9)", kubevirtVersion())
}
