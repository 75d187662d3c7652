#!/usr/bin/env bash
# Build the real helm the chart tests run, from helm.sh/helm/v4's published Go
# module (only the helm binary), with its k8s.io modules at the test cluster's
# release. Versions: versions.env here (helm) and ../kubernetes/versions.env
# (the cluster's release, Go).
#
# Output: ${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}/helm/dist/bin/helm,
# with a stamp; when the stamp matches, nothing is done (no go needed either).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/kubernetes/versions.env
. "$here/../kubernetes/versions.env"
# shellcheck source=tools/helm/versions.env
. "$here/versions.env"

cache="${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}"
out="$cache/helm"
dist="$out/dist"

log() { echo "tools/helm: $*" >&2; }

stamp_text() {
  cat "$here/versions.env" "$here/../kubernetes/versions.env"
  cat "$here/build.sh" "$here/../go.sh" | sha256sum | cut -d' ' -f1
}

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9 # one build at a time on this machine; a second caller then finds the stamp
if [ -f "$dist/.stamp" ] && [ "$(cat "$dist/.stamp")" = "$(stamp_text)" ] && [ -x "$dist/bin/helm" ]; then
  log "up to date in $dist"
  exit 0
fi

# shellcheck source=tools/go.sh
. "$here/../go.sh"
go_setup
log "building helm $HELM_VERSION with $(go env GOVERSION) into $dist"

staging="$out/dist.partial"
rm -rf "$staging"
mkdir -p "$staging/bin"

# helm's go.mod names its k8s.io modules at a patch release of the cluster's
# minor; raise each of those to the cluster's own (v0.36.1 -> v0.36.3).
helm_dir="$(module_dir "helm.sh/helm/v4@$HELM_VERSION")"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
kube_minor="${KUBERNETES_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
{
  printf 'module rollguard.test/tools/helm\ngo %s\nrequire helm.sh/helm/v4 %s\n' \
    "$GO_MINIMUM" "$HELM_VERSION"
  awk -v version="$staging_version" -v minor="v0.$kube_minor." '
    $1 == "require" { $1 = ""; $0 = $0 }
    $1 ~ /^k8s\.io\// && index($2, minor) == 1 { print "require " $1 " " version }
  ' "$helm_dir/go.mod"
} | build_wrapped "$out/src" \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$staging/bin/helm" helm.sh/helm/v4/cmd/helm

stamp_text >"$staging/.stamp"
rm -rf "$dist"
mv "$staging" "$dist"
log "built $("$dist/bin/helm" version --short) in $dist"
