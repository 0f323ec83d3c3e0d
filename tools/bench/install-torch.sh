#!/usr/bin/env bash
# Installs Debian's PyTorch 1.13 and torchvision 0.14 for the PyTorch side of
# the ResNet18 benchmark (tools/bench/resnet_step.py) and for the ResNet
# fixtures (tools/fixtures/resnet/make.py). Neither `make test` nor CI needs them.
# Debian's torch calls the system BLAS for convolution backward (and some
# forward) kernels; with the default reference BLAS a training step is ~13x
# slower, so OpenBLAS is installed too (it becomes the libblas.so.3 alternative).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-torch python3-torchvision libopenblas0-pthread
