#!/usr/bin/env bash
# A real single-node Slurm cluster runs a small bmc sweep: munged, slurmctld
# and slurmd start on this machine from a scratch folder (their own munge key
# and socket, free ports, no systemd), `bmc sweep --executor slurm` submits a
# job array of synth-av cells, and every cell's results are checked. Then one
# cell's run is removed and a second grid adds a cell that fails (a dataset
# folder that does not exist); resubmitting runs exactly those two cells, the
# one to completion and the other to a recorded failure. The daemons are
# stopped by their pid files when the script ends, however it ends.
#
#   tools/slurm/test.sh [BMC]     (default bin/bmc; needs root: apt-get, daemons)
set -euo pipefail

BMC=$(realpath "${1:-bin/bmc}")
[[ -x $BMC ]] || { echo "slurm test: no bmc at $BMC (make build)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "slurm test: needs root (it installs Slurm and starts its daemons)" >&2; exit 1; }
start=$(date +%s)

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }
fi

scratch=$(mktemp -d /tmp/bmc-slurm.XXXXXX)
chmod 755 "$scratch"
ok=0
stop_daemons() {
	for pidfile in "$scratch/slurmd.pid" "$scratch/slurmctld.pid" "$scratch/munge/munged.pid"; do
		[[ -s $pidfile ]] || continue
		pid=$(cat "$pidfile")
		kill "$pid" 2>/dev/null || continue
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	done
	if [[ $ok != 1 ]]; then
		for log in "$scratch"/*.log "$scratch"/sweep/slurm/logs/*.out; do
			[[ -f $log ]] && { echo "--- $log"; tail -n 30 "$log"; }
		done
		echo "slurm test: FAILED (scratch folder kept: $scratch)" >&2
	else
		rm -rf "$scratch"
	fi
}
trap stop_daemons EXIT

# munge, isolated from any munged the machine runs: its own key and socket.
mkdir -m 700 "$scratch/munge"
head -c 1024 /dev/urandom >"$scratch/munge/munge.key"
chmod 400 "$scratch/munge/munge.key"
munged --force --key-file="$scratch/munge/munge.key" --socket="$scratch/munge/socket" \
	--pid-file="$scratch/munge/munged.pid" --log-file="$scratch/munged.log" --seed-file="$scratch/munge/seed"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
mem=$(($(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 512))
conf=$scratch/slurm.conf
cat >"$conf" <<EOF
ClusterName=bmctest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$scratch/munge/socket
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$scratch/state
SlurmdSpoolDir=$scratch/spool
SlurmctldPidFile=$scratch/slurmctld.pid
SlurmdPidFile=$scratch/slurmd.pid
SlurmctldLogFile=$scratch/slurmctld.log
SlurmdLogFile=$scratch/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$scratch/state" "$scratch/spool"
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf"
for i in $(seq 60); do
	sinfo -h -o %T 2>/dev/null | grep -qx idle && break
	[[ $i == 60 ]] && { echo "slurm test: the node never became idle" >&2; exit 1; }
	sleep 1
done
echo "slurm test: cluster up after $(($(date +%s) - start)) s"

sweepdir=$scratch/sweep
cat >"$scratch/grid.yaml" <<EOF
name: slurm-test
methods: [baseline, {method: ogm, hp: {modulation_starts: 0}}]
datasets: [synth-av]
seeds: [0, 1]
train: {epochs: 2}
EOF
cat >"$scratch/more.yaml" <<EOF
name: slurm-test
methods: [baseline]
datasets: [{dataset: cremad, data_root: $scratch/no-such-folder}]
EOF

# states prints the cells' states in manifest order (from bmc sweep status --json).
states() { "$BMC" sweep status "$sweepdir" --json | python3 -c 'import json,sys; print(" ".join(c["state"].replace(" ", "-") for c in json.load(sys.stdin)))'; }
wait_done() {
	timeout 300 "$BMC" sweep status "$sweepdir" --wait --poll 1s >/dev/null ||
		{ echo "slurm test: the jobs did not finish in 5 minutes" >&2; squeue; exit 1; }
}

"$BMC" sweep "$scratch/grid.yaml" --executor slurm --out "$sweepdir" --cpus-per-task 1
grep -qx '#SBATCH --array=0-3' "$sweepdir/slurm/submit-1.sbatch"
wait_done
[[ $(states) == "done done done done" ]] || { echo "slurm test: after the first job: $(states)" >&2; exit 1; }
ls "$sweepdir"/slurm/logs/*_[0-3].out >/dev/null

# Every cell's results: the grid's method, dataset and seed, two epochs,
# better than chance (10 classes), FLOPs counted.
for run in "$sweepdir"/runs/*; do
	python3 - "$run" <<'EOF'
import json, os, sys
run = sys.argv[1]
r = json.load(open(os.path.join(run, "results.json")))
name = os.path.basename(run)
assert r["method"] == name.split(".")[0].split("_")[0], (name, r["method"])
assert r["dataset"] == "synth-av" and r["epochs"] == 2, r
assert r["test"]["acc"] > 0.15 and r["training_flops"] > 0, r
assert os.path.exists(os.path.join(run, "model.onnx"))
EOF
done

# A lost run and a cell that fails: resubmitting runs exactly those two.
rm -rf "$sweepdir/runs/ogm.modulation_starts=0_synth-av_seed0"
"$BMC" sweep "$scratch/more.yaml" --executor slurm --out "$sweepdir" --cpus-per-task 1
grep -qx '#SBATCH --array=1,4' "$sweepdir/slurm/submit-2.sbatch"
wait_done
[[ $(states) == "done done done done failed" ]] || { echo "slurm test: after resubmitting: $(states)" >&2; exit 1; }
"$BMC" sweep status "$sweepdir" | grep -q "no-such-folder"
"$BMC" sweep "$scratch/more.yaml" --executor slurm --out "$sweepdir" --no-submit | grep -q "for 1 cells"
"$BMC" report "$sweepdir" | grep -q "baseline_cremad_seed0: cell failed"

ok=1
echo "slurm test: passed in $(($(date +%s) - start)) s"
