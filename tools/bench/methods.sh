#!/usr/bin/env bash
# Times every method's training step at the backbone benchmark's size (two
# ResNet-18, batch 8; experiment.BenchRequest "bench") through `bmc bench`,
# and prints each step's time relative to Baseline's. UMT's teachers are
# one-epoch Unimodal runs at the same size, trained first (their training is
# not timed: the step time is what matters here). The methods run in ROUNDS
# interleaved rounds and each keeps its fastest round's median: on a shared
# machine the same step varies by a third between runs, while the fastest of
# several medians repeats.
# Usage: tools/bench/methods.sh [BMC] [THREADS] [ITERS] [ROUNDS]
set -euo pipefail
bmc=${1:-bin/bmc}
threads=${2:-1}
iters=${3:-5}
rounds=${4:-3}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
size=(--dataset synth-av --data classes=6,train=16,val=8,test=8,shape.audio=1x256x64,shape.visual=3x1x112x112
	--encoder resnet18 --batch-size 8 --eval-batch-size 8 --lr 1e-3)
for m in audio visual; do
	"$bmc" train --method unimodal --hp modality=$m "${size[@]}" --epochs 1 --threads "$threads" --quiet --out "$scratch/teacher-$m" >/dev/null
done
methods=(baseline "unimodal --hp modality=audio" sample mla opm greedy amco mmcosine
	"umt --teacher audio=$scratch/teacher-audio --teacher visual=$scratch/teacher-visual"
	mbsd cml mmpareto gblending lfm "ogm --hp method=OGM_GE" agm pmr relearning reconboost)
declare -A wall cpu graphs
for round in $(seq "$rounds"); do
	for entry in "${methods[@]}"; do
		read -r -a args <<<"$entry"
		json=$("$bmc" bench --size bench --method "${args[@]}" --threads "$threads" --iters "$iters" --warmup 2 --json)
		read -r w c g < <(/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["step"]["wall_ms"], r["step"]["cpu_ms"], ",".join(r["step_graphs"]))' <<<"$json")
		m=${args[0]}
		if [ -z "${wall[$m]:-}" ] || /usr/bin/python3 -c "import sys; sys.exit(0 if $w < ${wall[$m]} else 1)"; then
			wall[$m]=$w cpu[$m]=$c graphs[$m]=$g
		fi
	done
done
printf '%-14s %10s %10s %8s  %s\n' method "step ms" "cpu ms" "/base" "graphs per step"
for entry in "${methods[@]}"; do
	read -r -a args <<<"$entry"
	m=${args[0]}
	printf '%-14s %10.1f %10.1f %8.2f  %s\n' "$m" "${wall[$m]}" "${cpu[$m]}" "$(/usr/bin/python3 -c "print(${wall[$m]}/${wall[baseline]})")" "${graphs[$m]}"
done
echo "(fastest of $rounds medians of $iters steps each, $threads ORT thread(s); /base: step time over Baseline's)"
