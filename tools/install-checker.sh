#!/usr/bin/env bash
# Installs Debian's python3-onnx (the independent ONNX checker the tests use).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-onnx
