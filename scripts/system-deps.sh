#!/usr/bin/env bash
# Debian packages the test suite needs. The runtime itself needs none yet:
# ffmpeg comes from the imageio-ffmpeg wheel, Ray and moto from PyPI.
set -euo pipefail
PACKAGES=()
if [ ${#PACKAGES[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "run as root to install: ${PACKAGES[*]}"; exit 0; fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
