module hooksidecar/goconfigmap

go 1.21
