#!/usr/bin/env bash
# Fetches ONNX Runtime's CPU library from the npm package onnxruntime-node
# without running its install scripts, verifies its checksum and stores it at
# the given path. Usage: fetch-ort.sh VERSION SHA256 DEST
set -euo pipefail
version=$1 sum=$2 dest=$3
member=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
command -v npm >/dev/null || { echo "fetch-ort: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching onnxruntime-node@$version (about 110 MB) ..." >&2
(cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-"$version".tgz -C "$tmp" "$member"
got=$(sha256sum "$tmp/$member" | cut -d' ' -f1)
if [ "$got" != "$sum" ]; then
	echo "fetch-ort: checksum mismatch for $member: got $got, want $sum" >&2
	exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/$member" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "onnxruntime $version → $dest" >&2
