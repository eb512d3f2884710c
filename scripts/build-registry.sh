#!/usr/bin/env bash
# Fetches Apicurio Registry (a Confluent-compatible schema registry: /apis/ccompat/v7) from Maven
# Central and caches it in a versioned folder outside the repository. Prints the folder holding
# quarkus-run.jar. Apicurio publishes its ready-built Quarkus application (the `all` tar.gz
# attached to apicurio-registry-app), so nothing is compiled here; it needs Java 21 or newer at
# run time (tests/harness/registry.py finds one).
set -euo pipefail

APICURIO_VERSION="${APICURIO_VERSION:-3.3.3}"
CACHE="${STREAMHOUSE_CACHE:-$HOME/.cache/streamhouse}"
DEST="$CACHE/apicurio-registry-$APICURIO_VERSION"

if [ -f "$DEST/.complete" ]; then
  echo "$DEST/app"
  exit 0
fi

mkdir -p "$DEST"
echo "[build-registry] fetching Apicurio Registry $APICURIO_VERSION from Maven Central" >&2
rm -rf "$DEST/app"
# dependency:unpack needs no project of ours: Maven runs it on its stand-alone pom.
mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:unpack \
  -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
  -DoutputDirectory="$DEST/app" >&2
test -f "$DEST/app/quarkus-run.jar"
touch "$DEST/.complete"
echo "$DEST/app"
