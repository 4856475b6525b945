#!/usr/bin/env bash
# Debian packages the test suite needs: Chromium for the dashboard's browser tests,
# and npm (only where Node.js is missing) for the dashboard's hls.js. The runtime
# itself needs none: ffmpeg comes from the imageio-ffmpeg wheel, Ray and moto from PyPI.
set -euo pipefail
PACKAGES=()
command -v chromium >/dev/null || PACKAGES+=(chromium)
command -v npm >/dev/null || PACKAGES+=(npm)
if [ ${#PACKAGES[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "run as root to install: ${PACKAGES[*]}"; exit 0; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
chromium --version
