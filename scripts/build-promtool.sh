#!/usr/bin/env bash
# Builds Prometheus' promtool (for `promtool test rules` on the chart's alert rules) from the
# Go module proxy and caches it in a versioned folder. Prints the folder holding the binary.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-0.316.0}"
CACHE="${STREAMHOUSE_CACHE:-$HOME/.cache/streamhouse}"
DEST="$CACHE/promtool-v${PROMETHEUS_MODULE_VERSION}"
if [ -x "$DEST/bin/promtool" ]; then
  echo "$DEST/bin"
  exit 0
fi
mkdir -p "$DEST/bin"
echo "[build-promtool] building promtool (prometheus module v$PROMETHEUS_MODULE_VERSION)" >&2
CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$DEST/bin.tmp" \
  go install -trimpath -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@v$PROMETHEUS_MODULE_VERSION"
mv "$DEST/bin.tmp/promtool" "$DEST/bin/promtool"
rmdir "$DEST/bin.tmp"
echo "$DEST/bin"
