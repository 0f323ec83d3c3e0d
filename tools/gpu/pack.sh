#!/usr/bin/env bash
# Packs what tools/gpu/check.sh needs on a GPU machine that has no Go
# toolchain and no registry access: ONNX Runtime's core library with its CUDA
# provider libraries (`make ort-cuda`), bin/bmc and the test binaries of
# runtime and gradcheck, with their checksums, as one gzip'd tar split into
# parts that fit one device call each (a call carries at most 64 MiB with the
# working tree). Writes OUT_DIR/part.NN, OUT_DIR/parts.sha256 and
# OUT_DIR/README (the carry list of each call). Run from the repository root
# (`make gpu-carry` does). Usage: pack.sh CORE_LIBRARY OUT_DIR
set -euo pipefail
core=$1 out=$2
libdir=$(dirname "$core")
for f in "$core" "$libdir"/libonnxruntime_providers_shared.so "$libdir"/libonnxruntime_providers_cuda.so; do
	[ -f "$f" ] || { echo "pack: $f is missing (make ort ort-cuda)" >&2; exit 1; }
done
# What travels anyway: tracked and untracked-not-ignored files.
tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
limit=$((64 << 20)) margin=$((2 << 20))
part=$((56 << 20))
if [ $((tree + part + margin)) -gt $limit ]; then
	part=$((limit - tree - margin))
fi
[ "$part" -gt $((8 << 20)) ] || { echo "pack: the working tree ($tree bytes) leaves no room for parts in a 64 MiB call" >&2; exit 1; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/bmc-gpu-pack.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bundle/lib" "$stage/bundle/bin"
cp -L "$core" "$stage/bundle/lib/libonnxruntime.so.1"
cp -L "$libdir"/libonnxruntime_providers_shared.so "$libdir"/libonnxruntime_providers_cuda.so "$stage/bundle/lib/"
# Stripped: smaller parts, and nothing here needs symbols.
go build -ldflags="-s -w" -o "$stage/bundle/bin/bmc" ./cmd/bmc
go test -c -ldflags="-s -w" -o "$stage/bundle/bin/runtime.test" ./runtime
go test -c -ldflags="-s -w" -o "$stage/bundle/bin/gradcheck.test" ./gradcheck
(cd "$stage/bundle" && sha256sum lib/* bin/* >SHA256SUMS)
echo "pack: compressing $(du -sh "$stage/bundle" | cut -f1) ..." >&2
tar -C "$stage" -cf - bundle | gzip -1 >"$stage/bundle.tar.gz"
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
split -b "$part" -d -a 2 "$stage/bundle.tar.gz" "$out.tmp/part."
(cd "$stage" && sha256sum bundle.tar.gz) >"$out.tmp/parts.sha256"
(cd "$out.tmp" && sha256sum part.*) >>"$out.tmp/parts.sha256"
parts=("$out.tmp"/part.*)
n=${#parts[@]}
{
	echo "bmc GPU check: $n parts of at most $((part >> 20)) MiB (working tree $((tree >> 20)) MiB), bundle $(du -b "$stage/bundle.tar.gz" | cut -f1) bytes."
	echo "Make one device call per part, back to back (the machine keeps the parts only while it stays warm):"
	for i in $(seq 0 $((n - 1))); do
		p=$(printf 'part.%02d' "$i")
		if [ "$i" -lt $((n - 1)) ]; then
			echo "  call $((i + 1)): carry [\"$out/$p\", \"$out/parts.sha256\"]  command: tools/gpu/check.sh --stash  (timeout_s 120)"
		else
			echo "  call $((i + 1)): carry [\"$out/$p\", \"$out/parts.sha256\"]  command: tools/gpu/check.sh  (timeout_s 600)"
		fi
	done
	echo "The last call joins and verifies the parts, runs the checks and writes its results into \$OUT."
} >"$out.tmp/README"
rm -rf "$out"
mv "$out.tmp" "$out"
cat "$out/README"
