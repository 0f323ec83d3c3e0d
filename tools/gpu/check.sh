#!/usr/bin/env bash
# The GPU check of bmc's CUDA execution provider (issue 13), one command on
# a machine with an NVIDIA GPU, CUDA 13 in /usr/local/cuda-13.0 and python3
# with PyTorch (CUDA); it needs no Go toolchain and no registry: `make
# gpu-carry` packs the binaries and ONNX Runtime's libraries into
# .gpu-carry/part.NN, carried one per device call (.gpu-carry/README).
#
#   tools/gpu/check.sh --stash   keeps the carried part(s) for the last call
#   tools/gpu/check.sh           joins and verifies the parts, then runs:
#     1. runtime's device test: a Conv+MatMul session on the device against
#        the CPU, and Go's SIGSEGV handling intact afterwards;
#     2. gradcheck's conv, pool and batch-norm rules on the device, each
#        compared with the CPU;
#     3. one epoch of Baseline, OGM-GE and AGM on synth-av with ResNet18
#        encoders on the device and on the CPU (twice: all threads and 2,
#        whose spread calibrates the tolerance), compared;
#     4. the two-ResNet18 step at --size bench and ks, bmc against PyTorch,
#        fp32, TF32 and bf16 (bmc refuses bf16: not built yet).
#   Options: --device D (default cuda; cpu is the dry run used off a GPU),
#   --sizes, --precisions, --iters (bench), --budget SECONDS (default 470: the device tests end by 45% of it, the training by 70%, the bench by 100%).
# Everything is written into $OUT (default ./gpu-out): summary.json (one
# line per step: rc, seconds), check.log, gpu.txt, train.jsonl, bench.txt,
# bench.json. The exit status is 0 when every step passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
carry=$root/.gpu-carry
work=${BMC_GPU_WORK:-/tmp/bmc-gpu}
out=${OUT:-$root/gpu-out}
py=${PYTHON:-python3}
device=cuda stash=0 sizes=bench,ks precisions=fp32,tf32,bf16 iters=10 budget=470
while [ $# -gt 0 ]; do
	case $1 in
	--stash) stash=1 ;;
	--device) device=$2; shift ;;
	--sizes) sizes=$2; shift ;;
	--precisions) precisions=$2; shift ;;
	--iters) iters=$2; shift ;;
	--budget) budget=$2; shift ;;
	*) echo "check.sh: unknown argument $1 (see the comment at the top)" >&2; exit 2 ;;
	esac
	shift
done
start=$(date +%s)
mkdir -p "$work/parts" "$out"

# Parts arrive one per call; each call keeps its part outside the checkout.
for f in "$carry"/part.* "$carry"/parts.sha256; do
	[ -f "$f" ] && cp "$f" "$work/parts/"
done
have=$(cd "$work/parts" && ls part.* 2>/dev/null | tr '\n' ' ')
if [ "$stash" = 1 ]; then
	echo "check.sh: parts kept in $work/parts: ${have:-none}"
	exit 0
fi

log=$out/check.log summary=$out/summary.json
: >"$log"
: >"$summary"
failed=0
say() { echo "$*" | tee -a "$log"; }
# record NAME RC START: one summary line per step.
record() {
	local s=$(($(date +%s) - $3))
	echo "{\"step\":\"$1\",\"rc\":$2,\"seconds\":$s}" >>"$summary"
	[ "$2" = 0 ] || failed=1
	say "== $1: rc $2 in $s s"
}
# left UNTIL: seconds from now to UNTIL seconds after the start.
left() { echo $((start + $1 - $(date +%s))); }
# run NAME UNTIL CMD...: CMD under a timeout that ends UNTIL seconds after
# the start, its output in check.log.
run() {
	local name=$1 until=$2 t0 rc
	shift 2
	t0=$(date +%s)
	local lim
	lim=$(left "$until")
	if [ "$lim" -lt 5 ]; then
		say "== $name: skipped, out of time"
		echo "{\"step\":\"$name\",\"rc\":\"skipped\",\"seconds\":0}" >>"$summary"
		failed=1
		return
	fi
	say "== $name (at most $lim s): $*"
	timeout -k 5 "$lim" "$@" >>"$log" 2>&1
	rc=$?
	record "$name" "$rc" "$t0"
}

# Join and verify (once per machine: a rerun reuses the verified bundle).
t0=$(date +%s)
join() {
	cd "$work/parts" || return 1
	[ -f parts.sha256 ] || { echo "no parts.sha256 carried"; return 1; }
	local missing
	missing=$(grep -o 'part\.[0-9]*' parts.sha256 | while read -r p; do [ -f "$p" ] || echo "$p"; done | tr '\n' ' ')
	if [ -n "$missing" ]; then
		echo "missing $missing(have ${have:-none}): carry every part, one per call, back to back; a machine given back between calls loses them"
		return 1
	fi
	if [ -f "$work/bundle/.verified" ] && cmp -s parts.sha256 "$work/bundle/.verified"; then
		echo "bundle already joined and verified"
		return 0
	fi
	grep 'part\.' parts.sha256 | sha256sum -c --quiet - || return 1
	cat $(grep -o 'part\.[0-9]*' parts.sha256) >"$work/bundle.tar.gz"
	(cd "$work" && grep 'bundle.tar.gz' parts/parts.sha256 | sha256sum -c --quiet -) || return 1
	rm -rf "$work/bundle"
	tar -xzf "$work/bundle.tar.gz" -C "$work" && rm -f "$work/bundle.tar.gz"
	(cd "$work/bundle" && sha256sum -c --quiet SHA256SUMS) || return 1
	cp parts.sha256 "$work/bundle/.verified"
	echo "joined and verified: $(cd "$work/bundle" && wc -l <SHA256SUMS) files"
}
say "== join ($have)"
(join) >>"$log" 2>&1
rc=$?
record join "$rc" "$t0"
[ "$rc" = 0 ] || { tail -3 "$log"; exit 1; }
bin=$work/bundle/bin
export BMC_ORT_LIB=$work/bundle/lib/libonnxruntime.so.1
cuda=/usr/local/cuda-13.0/targets/x86_64-linux/lib
# cuDNN (and any CUDA library the toolkit folder lacks) from PyTorch's wheels.
wheels=$("$py" -c 'import glob, os, nvidia; print(":".join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib")))))' 2>/dev/null)
export LD_LIBRARY_PATH=$cuda${wheels:+:$wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
say "BMC_ORT_LIB=$BMC_ORT_LIB"
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if [ "$device" != cpu ]; then
	{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } >"$out/gpu.txt" 2>&1
fi
"$bin/bmc" version >>"$log" 2>&1

# 1-2. Device tests (BMC_TEST_DEVICE turns their skips into runs).
export BMC_TEST_DEVICE=$device
run runtime-device-test $((budget * 20 / 100)) "$bin/runtime.test" -test.run 'TestDeviceSessionMatchesCPU|TestTargetCheck' -test.v -test.count 1
run gradcheck-device $((budget * 45 / 100)) "$bin/gradcheck.test" -test.run 'TestGradientsOnDevice' -test.v -test.count 1

# 3. One epoch of each method on the device and on the CPU (twice).
runs=$work/runs
rm -rf "$runs"
mkdir -p "$runs"
: >"$out/train.jsonl"
data=(--dataset synth-av --encoder resnet18 --data train=64,val=32,test=32,classes=6,shape.audio=1x64x32,shape.visual=3x1x32x32
	--batch-size 16 --eval-batch-size 32 --epochs 1 --quiet)
train_method() {
	local name=$1 t0 rc lim
	shift
	t0=$(date +%s)
	lim=$(left $((budget * 70 / 100)))
	[ "$lim" -ge 10 ] || { say "== train-$name: skipped, out of time"; echo "{\"step\":\"train-$name\",\"rc\":\"skipped\",\"seconds\":0}" >>"$summary"; failed=1; return; }
	say "== train-$name (at most $lim s)"
	(
		set -e
		timeout -k 5 "$lim" "$bin/bmc" train "$@" "${data[@]}" --out "$runs/$name-cpu" --device cpu
		timeout -k 5 "$lim" "$bin/bmc" train "$@" "${data[@]}" --out "$runs/$name-cpu2" --device cpu --threads 2
		timeout -k 5 "$lim" "$bin/bmc" train "$@" "${data[@]}" --out "$runs/$name-dev" --device "$device"
		"$py" "$root/tools/gpu/compare_runs.py" "$runs/$name-dev" "$runs/$name-cpu" --reference "$runs/$name-cpu2" "$runs/$name-cpu" --name "$name" >>"$out/train.jsonl"
	) >>"$log" 2>&1
	rc=$?
	tail -1 "$out/train.jsonl" | cut -c1-400 >>"$log"
	record "train-$name" "$rc" "$t0"
}
train_method baseline --method baseline
train_method ogm-ge --method ogm --hp method=OGM_GE,modulation_starts=0
train_method agm --method agm

# 4. The step benchmark against PyTorch at both sizes and every precision.
threads=$(nproc)
run bench "$budget" "$py" "$root/tools/bench/compare.py" --bmc "$bin/bmc" --sizes "$sizes" --threads "$threads" \
	--device "$device" --precisions "$precisions" --iters "$iters" --timeout 90 --json-out "$out/bench.json"
sed -n '/^== bench/,$p' "$log" | grep -v '^== bench' >"$out/bench.txt"

say "== done in $(($(date +%s) - start)) s; failed steps: $(grep -vc '"rc":0' "$summary")"
exit $failed
