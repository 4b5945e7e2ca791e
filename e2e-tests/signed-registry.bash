# A registry on loopback with images signed by cosign, for e2e-tests/signatures.bats and the
# signature benchmark of `make bench`: go-containerregistry's registry (`crane registry serve`,
# in memory) and cosign signatures without a transparency log. Sourced; needs ROOT, and
# SIGNED_REGISTRY_DIR, where the keys, the sources file and the registry's log go.

# start_signed_registry: the registry on a free port; exports REGISTRY (host:port), CRANE and
# COSIGN, and writes $SIGNED_REGISTRY_DIR/sources.yml (kwctl's format: the registry over HTTP).
start_signed_registry() {
  local dir=$SIGNED_REGISTRY_DIR port=""
  CRANE=$("$ROOT/hack/go-tool.sh" crane)
  COSIGN=$("$ROOT/hack/go-tool.sh" cosign)
  export CRANE COSIGN COSIGN_PASSWORD="" COSIGN_YES=true
  "$CRANE" registry serve --address 127.0.0.1:0 >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 50); do
    port=$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$dir/registry.log")
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { cat "$dir/registry.log" >&2; return 1; }
  export REGISTRY="127.0.0.1:$port"
  printf 'insecure_sources: ["%s"]\n' "$REGISTRY" >"$dir/sources.yml"
}

stop_signed_registry() {
  [[ -e $SIGNED_REGISTRY_DIR/registry.pid ]] || return 0
  kill "$(cat "$SIGNED_REGISTRY_DIR/registry.pid")" 2>/dev/null || true
}

# generate_keys NAME...: cosign key pairs NAME.key and NAME.pub.
generate_keys() {
  local name
  for name in "$@"; do
    (cd "$SIGNED_REGISTRY_DIR" && "$COSIGN" generate-key-pair --output-key-prefix "$name" >/dev/null 2>&1)
  done
}

# push_image NAME: an image of one layer whose content is its name, as $REGISTRY/hooks/NAME:v1.
push_image() {
  local work="$SIGNED_REGISTRY_DIR/image-$1"
  mkdir -p "$work" && printf '%s\n' "$1" >"$work/content"
  tar -C "$work" -czf "$work/layer.tgz" content
  "$CRANE" append --insecure -f "$work/layer.tgz" -t "$REGISTRY/hooks/$1:v1" >/dev/null 2>&1
}

# sign_image KEY IMAGE [COSIGN ARGS...]: the image's digest signed with KEY.key, without a
# transparency log.
sign_image() {
  local key=$1 image=$2 digest
  shift 2
  digest=$("$CRANE" digest --insecure "$image")
  "$COSIGN" sign --key "$SIGNED_REGISTRY_DIR/$key.key" --tlog-upload=false \
    --allow-insecure-registry --allow-http-registry "$@" "${image%:*}@$digest" >/dev/null 2>&1
}
