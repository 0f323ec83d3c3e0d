#!/usr/bin/env python3
"""Compares two bmc run directories trained from the same plan on two
devices (say CUDA and the CPU): the parameters of best.safetensors, the
losses, accuracies and method numbers of every log.jsonl line, and
results.json's test metrics. Prints one JSON object with the largest
differences and whether they are within fp32 tolerance; exits 1 when not.

fp32 tolerance: the two sides sum in other orders and nothing more, but in a
training run that alone moves numbers by more than rounding: ReLU and
max-pool near-ties route single gradients differently, so on a one-epoch
ResNet18 run 1 and 2 CPU threads gave parameters 3.3e-3 apart and momentum
buffers 20% apart (relative L2). So --reference C D (the same plan on the
CPU with another thread count) measures that spread in the same run, and
each difference of A and B must be at most 4 times the reference's or its
floor, whichever is larger: parameters (checkpoint tensors without a '/',
i.e. not optimizer or method state) 2e-3 of max(1, the tensor's largest
magnitude), losses 2e-3 relative, method numbers 5e-3 relative, accuracies
two samples. Optimizer and method state is reported, not checked. The
spread grows with every step (chaotically): after one step 1 and 2 CPU
threads agreed to 7e-9 in the parameters, after eight to 7e-2.
Needs numpy.
Usage: compare_runs.py RUN_A RUN_B [--reference RUN_C RUN_D] [--name NAME]
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

FLOORS = {"parameters": 2e-3, "loss": 2e-3, "method": 5e-3, "acc_samples": 2.0}
SPREAD_FACTOR = 4.0


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        if v["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {k} is {v['dtype']}, want F32")
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], dtype="<f4")
    return out


def rel(a, b):
    """max |a-b| / max(1, max |b|); +inf when either holds a NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if b.size == 0:
        return 0.0
    d = float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b))))
    return d if np.isfinite(d) else float("inf")


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def measure(a, b):
    """The largest differences of two runs, by kind, with where they are."""
    m = {k: 0.0 for k in FLOORS}
    where = {}
    notes = []

    def note(kind, d, at):
        if d > m[kind] or not np.isfinite(d):
            m[kind], where[kind] = d, at

    pa, pb = (read_safetensors(os.path.join(d, "best.safetensors")) for d in (a, b))
    if pa.keys() != pb.keys():
        notes.append(f"checkpoints hold different tensors: {sorted(pa.keys() ^ pb.keys())[:5]}")
    state = (0.0, "")
    for k in sorted(pa.keys() & pb.keys()):
        d = rel(pa[k], pb[k])
        if "/" not in k:
            note("parameters", d, k)
        elif d > state[0]:
            state = (d, k)
    la, lb = (read_lines(os.path.join(d, "log.jsonl")) for d in (a, b))
    if len(la) != len(lb):
        notes.append(f"log.jsonl has {len(la)} and {len(lb)} lines")
    for ea, eb in zip(la, lb):
        for split in ("train", "val"):
            x, y = ea[split], eb[split]
            note("loss", rel([x["loss"]], [y["loss"]]), f"epoch {ea['epoch']} {split}")
            note("acc_samples", abs(x["acc"] - y["acc"]) * x["samples"], f"epoch {ea['epoch']} {split}")
        ma, mb = ea.get("method") or {}, eb.get("method") or {}
        for k in sorted(ma.keys() & mb.keys()):
            note("method", rel([ma[k]], [mb[k]]), f"epoch {ea['epoch']} {k}")
    ra, rb = (json.load(open(os.path.join(d, "results.json"))) for d in (a, b))
    note("loss", rel([ra["test"]["loss"]], [rb["test"]["loss"]]), "test")
    note("acc_samples", abs(ra["test"]["acc"] - rb["test"]["acc"]) * ra["test"]["samples"], "test")
    return {"max": m, "at": where, "state_max_rel_diff": state[0], "state_at": state[1],
            "devices": [ra.get("device"), rb.get("device")], "test_acc": [ra["test"]["acc"], rb["test"]["acc"]],
            "train_loss": [la[-1]["train"]["loss"], lb[-1]["train"]["loss"]] if la and lb else None, "notes": notes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--reference", nargs=2, metavar=("RUN_C", "RUN_D"))
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    rep = {"name": args.name, "runs": [args.a, args.b], "compared": measure(args.a, args.b)}
    tol = dict(FLOORS)
    if args.reference:
        rep["reference_runs"] = args.reference
        rep["reference"] = measure(*args.reference)
        for k in tol:
            tol[k] = max(tol[k], SPREAD_FACTOR * rep["reference"]["max"][k])
    rep["tolerance"] = tol
    problems = list(rep["compared"]["notes"])
    for k, d in rep["compared"]["max"].items():
        if not d <= tol[k]:
            problems.append(f"{k} differ by {d:.3g} at {rep['compared']['at'].get(k)} (tolerance {tol[k]:.3g})")
    rep["problems"] = problems
    rep["ok"] = not problems
    json.dump(rep, sys.stdout)
    print()
    sys.exit(0 if rep["ok"] else 1)


if __name__ == "__main__":
    main()
