#!/usr/bin/env python3
"""Times the two-ResNet18 audio-visual step in bmc and in PyTorch at each
benchmark size and thread count, each configuration in its own process (so
each peak RSS is that process's), and prints one table with bmc/PyTorch
ratios. `make bench` runs it.

Usage: /usr/bin/python3 tools/bench/compare.py [--bmc bin/bmc] [--sizes bench,ks]
       [--threads 1,2] [--iters 10] [--method baseline]
       [--device cpu|cuda[:N]] [--precisions fp32,tf32,bf16] [--rounds 1] [--json-out FILE]
Without torch (tools/bench/install-torch.sh) only bmc's side is printed. A
side that refuses a configuration (bmc has no bf16 yet) shows its error in
the row; --json-out writes every row's measurements.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, timeout=None):
    """The JSON a command prints, or {"error": its last stderr line}."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines() or [f"exit status {r.returncode}"]
        return {"error": lines[-1]}
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bmc", default="bin/bmc")
    ap.add_argument("--sizes", default="bench,ks")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--method", default="baseline")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", default="fp32")
    ap.add_argument("--json-out", help="also write the rows as JSON to this file (after every row)")
    ap.add_argument("--timeout", type=float, help="seconds each measurement may take")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every measurement, interleaving the two sides; ratios show their range")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds {args.rounds}: want at least 1")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("compare: PyTorch is not installed (tools/bench/install-torch.sh); printing bmc only", file=sys.stderr)
    configs = [(size, threads, prec) for size in args.sizes.split(",") for threads in args.threads.split(",")
               for prec in args.precisions.split(",")]
    rows = [{"size": size, "threads": threads, "device": args.device, "precision": prec, "rounds": []}
            for size, threads, prec in configs]
    for rnd in range(args.rounds):
        for row in rows:
            b_cmd = [args.bmc, "bench", "--size", row["size"], "--method", args.method, "--threads", row["threads"],
                     "--device", args.device, "--precision", row["precision"], "--iters", str(args.iters), "--json"]
            p_cmd = [sys.executable, os.path.join(HERE, "resnet_step.py"), "--size", row["size"],
                     "--threads", row["threads"], "--device", args.device, "--precision", row["precision"],
                     "--iters", str(args.iters), "--json"]
            # Alternate which side goes first, so a drift in the machine's
            # speed does not favour one of them.
            sides = [("bmc", b_cmd)] + ([("pytorch", p_cmd)] if have_torch else [])
            if rnd % 2 == 1:
                sides.reverse()
            got = {"bmc": None, "pytorch": None}
            for name, cmd in sides:
                got[name] = run_json(cmd, args.timeout)
            row["rounds"].append(got)
            if args.json_out:
                write_json(args.json_out, rows)
    print(f"{'size':<6} {'thr':>3} {'prec':<4} | {'bmc fwd ms':>10} {'bmc step ms':>11} {'step/fwd':>8} {'RSS MiB':>8} | "
          f"{'torch fwd':>9} {'torch step':>10} {'step/fwd':>8} {'RSS MiB':>8} | {'fwd ratio':>9} {'step ratio':>10} {'RSS ratio':>9}")
    for r in rows:
        b = summary([rd["bmc"] for rd in r["rounds"]])
        p = summary([rd["pytorch"] for rd in r["rounds"]]) if have_torch else None
        line = f"{r['size']:<6} {r['threads']:>3} {r['precision']:<4} |"
        line += side(b, 10, 11)
        if p:
            line += side(p, 9, 10)
            if "error" not in b and "error" not in p:
                line += (f" {ratio(r, 'forward'):>9} {ratio(r, 'step'):>10} {ratio(r, 'peak_rss_mib'):>9}")
        print(line)
    rounds = f"; ranges over {args.rounds} interleaved rounds" if args.rounds > 1 else ""
    print(f"(medians of {args.iters} runs each on {args.device}{rounds}; ratios are bmc / PyTorch; method {args.method})")
    for r in rows:
        for rd in r["rounds"]:
            for name in ("bmc", "pytorch"):
                if rd[name] and "error" in rd[name]:
                    print(f"{r['size']} {r['precision']} {name}: {rd[name]['error']}")


def value(m, key):
    return m[key] if key == "peak_rss_mib" else m[key]["wall_ms"]


def summary(runs):
    """The median over rounds of each measurement, or the first error."""
    for m in runs:
        if "error" in m:
            return m
    out = {}
    for key in ("forward", "step"):
        out[key] = {"wall_ms": statistics.median(m[key]["wall_ms"] for m in runs)}
    out["peak_rss_mib"] = statistics.median(m["peak_rss_mib"] for m in runs)
    out["step_per_forward"] = out["step"]["wall_ms"] / out["forward"]["wall_ms"]
    return out


def ratio(row, key):
    """bmc / PyTorch per round: the value, or its range over the rounds."""
    rs = sorted(value(rd["bmc"], key) / value(rd["pytorch"], key) for rd in row["rounds"]
                if "error" not in rd["bmc"] and "error" not in rd["pytorch"])
    if not rs:
        return "-"
    return f"{rs[0]:.2f}" if len(rs) == 1 or f"{rs[0]:.2f}" == f"{rs[-1]:.2f}" else f"{rs[0]:.2f}–{rs[-1]:.2f}"


def write_json(path, rows):
    with open(path + ".tmp", "w") as f:
        json.dump(rows, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)


def side(m, fwd_width, step_width):
    """One side's columns, or its error in their place."""
    if "error" in m:
        return f" {'(refused)':>{fwd_width + step_width + 19}} |"
    return (f" {m['forward']['wall_ms']:{fwd_width}.1f} {m['step']['wall_ms']:{step_width}.1f} "
            f"{m['step_per_forward']:8.2f} {m['peak_rss_mib']:8.0f} |")


if __name__ == "__main__":
    main()
