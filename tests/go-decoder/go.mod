module hooksidecar/godecoder

go 1.21
