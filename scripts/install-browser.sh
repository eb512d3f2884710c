#!/usr/bin/env bash
# The browser the console's e2e test drives: Debian's chromium package (Playwright launches it
# by executable_path; it never downloads a browser of its own). Prints the executable's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi
command -v chromium
