module hooksidecar/goregexp

go 1.21
