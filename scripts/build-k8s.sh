#!/usr/bin/env bash
# Builds a pinned Kubernetes control plane (kube-apiserver, kube-controller-manager, kubectl),
# etcd and helm from the Go module proxy and caches the binaries in a versioned folder.
#
# k8s.io/kubernetes is not `go install`-able: its go.mod points every k8s.io/* staging module
# at ./staging/src. We build it from a throwaway module that requires it and replaces each
# staging module with the published v0.X.Y of the same release.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
CACHE="${STREAMHOUSE_CACHE:-$HOME/.cache/streamhouse}"
DEST="$CACHE/k8s-v${K8S_VERSION}-etcd-v${ETCD_VERSION}-helm-v${HELM_VERSION}"
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd helm)

complete() {
  for b in "${BINARIES[@]}"; do [ -x "$DEST/bin/$b" ] || return 1; done
}
if complete; then
  echo "$DEST/bin"
  exit 0
fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$DEST/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { echo "[build-k8s] $*" >&2; }

build_kubernetes() {
  local mod="$work/kubernetes" staging minor
  mkdir -p "$mod" && cd "$mod"
  go mod init streamhouse.local/k8s-build >/dev/null 2>&1
  log "downloading k8s.io/kubernetes v$K8S_VERSION"
  local upstream_gomod
  upstream_gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  staging="0.${K8S_VERSION#1.}"
  # Every "k8s.io/x => ./staging/src/k8s.io/x" upstream becomes "k8s.io/x => k8s.io/x v0.Y.Z".
  python3 - "$upstream_gomod" "$staging" <<'PY' | while read -r m; do go mod edit -replace "$m=$m@v$staging"; done
import re, sys
text = open(sys.argv[1]).read()
for name in sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", text, re.M))):
    print(name)
PY
  go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
  minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "resolving dependencies"
  # Each path carries the version: a bare `go get pkg` would upgrade k8s.io/kubernetes.
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" 2>&1 | grep -vE '^go: (downloading|added|upgraded) ' >&2 || true
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    log "building $cmd (several minutes on 2 cores)"
    go build -trimpath -ldflags "$ldflags" -o "$DEST/bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$DEST/bin/$cmd.tmp" "$DEST/bin/$cmd"
  done
}

build_etcd() {
  local mod="$work/etcd"
  mkdir -p "$mod" && cd "$mod"
  go mod init streamhouse.local/etcd-build >/dev/null 2>&1
  log "building etcd v$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" 2>&1 | grep -vE '^go: (downloading|added|upgraded) ' >&2 || true
  go build -trimpath -ldflags "-s -w" -o "$DEST/bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$DEST/bin/etcd.tmp" "$DEST/bin/etcd"
}

build_helm() {
  local mod="$work/helm"
  mkdir -p "$mod" && cd "$mod"
  go mod init streamhouse.local/helm-build >/dev/null 2>&1
  log "building helm v$HELM_VERSION"
  go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" 2>&1 | grep -vE '^go: (downloading|added|upgraded) ' >&2 || true
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    -o "$DEST/bin/helm.tmp" helm.sh/helm/v3/cmd/helm
  mv "$DEST/bin/helm.tmp" "$DEST/bin/helm"
}

[ -x "$DEST/bin/etcd" ] || build_etcd
[ -x "$DEST/bin/helm" ] || build_helm
for b in kube-apiserver kube-controller-manager kubectl; do
  [ -x "$DEST/bin/$b" ] || { build_kubernetes; break; }
done
complete
echo "$DEST/bin"
