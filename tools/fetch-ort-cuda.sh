#!/usr/bin/env bash
# Fetches ONNX Runtime's CUDA execution provider libraries
# (libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so,
# built for CUDA 13) from the npm package com.github.asus4.onnxruntime.linux-x64-gpu
# without running its install scripts, verifies the tarball's checksum and that
# the provider was built from ONNX Runtime ORT_VERSION (the core's version: a
# provider from another release does not load), and puts both beside the core
# library in DEST_DIR. ORT_CUDA_TGZ=FILE uses an already downloaded tarball.
# Usage: fetch-ort-cuda.sh PACKAGE_VERSION TARBALL_SHA256 ORT_VERSION DEST_DIR
set -euo pipefail
pkgver=$1 sum=$2 ortver=$3 dest=$4
pkg=com.github.asus4.onnxruntime.linux-x64-gpu
libs=(libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
dir=package/Plugins/Linux/x64
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bmc-ort-cuda.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tgz=${ORT_CUDA_TGZ:-}
if [ -z "$tgz" ]; then
	command -v npm >/dev/null || { echo "fetch-ort-cuda: npm is needed (apt-get install npm)" >&2; exit 1; }
	echo "fetching $pkg@$pkgver (about 180 MB) ..." >&2
	(cd "$tmp" && npm pack --silent --ignore-scripts "$pkg@$pkgver" >/dev/null)
	tgz=$tmp/$pkg-$pkgver.tgz
fi
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sum" ]; then
	echo "fetch-ort-cuda: checksum mismatch for $tgz: got $got, want $sum" >&2
	exit 1
fi
tar --no-same-owner -xzf "$tgz" -C "$tmp" "${libs[@]/#/$dir/}"
# The provider carries its release as a plain string; the core refuses (or
# crashes on) a provider of another release, so check before installing.
if ! LC_ALL=C grep -aqx "$ortver" <(strings "$tmp/$dir/libonnxruntime_providers_cuda.so"); then
	found=$(strings "$tmp/$dir/libonnxruntime_providers_cuda.so" | grep -Ex '1\.[0-9]+\.[0-9]+' | sort -u | tr '\n' ' ')
	echo "fetch-ort-cuda: $pkg@$pkgver's CUDA provider is not ONNX Runtime $ortver (version strings in it: ${found:-none}); the core library is $ortver" >&2
	exit 1
fi
mkdir -p "$dest"
for l in "${libs[@]}"; do
	mv "$tmp/$dir/$l" "$dest/$l.tmp"
done
for l in "${libs[@]}"; do
	mv "$dest/$l.tmp" "$dest/$l"
done
echo "onnxruntime $ortver CUDA provider → $dest" >&2
