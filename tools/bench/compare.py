#!/usr/bin/env python3
"""Times the two-ResNet18 audio-visual step in bmc and in PyTorch at each
benchmark size and thread count, each configuration in its own process (so
each peak RSS is that process's), and prints one table with bmc/PyTorch
ratios. `make bench` runs it.

Usage: /usr/bin/python3 tools/bench/compare.py [--bmc bin/bmc] [--sizes bench,ks]
       [--threads 1,2] [--iters 10] [--method baseline]
Without torch (tools/bench/install-torch.sh) only bmc's side is printed.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bmc", default="bin/bmc")
    ap.add_argument("--sizes", default="bench,ks")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--method", default="baseline")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("compare: PyTorch is not installed (tools/bench/install-torch.sh); printing bmc only", file=sys.stderr)
    rows = []
    for size in args.sizes.split(","):
        for threads in args.threads.split(","):
            b = run_json([args.bmc, "bench", "--size", size, "--method", args.method, "--threads", threads,
                          "--iters", str(args.iters), "--json"])
            p = None
            if have_torch:
                p = run_json([sys.executable, os.path.join(HERE, "resnet_step.py"), "--size", size, "--threads", threads,
                              "--iters", str(args.iters), "--json"])
            rows.append((size, threads, b, p))
    print(f"{'size':<6} {'thr':>3} | {'bmc fwd ms':>10} {'bmc step ms':>11} {'step/fwd':>8} {'RSS MiB':>8} | "
          f"{'torch fwd':>9} {'torch step':>10} {'step/fwd':>8} {'RSS MiB':>8} | {'fwd ratio':>9} {'step ratio':>10} {'RSS ratio':>9}")
    for size, threads, b, p in rows:
        line = (f"{size:<6} {threads:>3} | {b['forward']['wall_ms']:10.1f} {b['step']['wall_ms']:11.1f} "
                f"{b['step_per_forward']:8.2f} {b['peak_rss_mib']:8.0f} |")
        if p:
            line += (f" {p['forward']['wall_ms']:9.1f} {p['step']['wall_ms']:10.1f} {p['step_per_forward']:8.2f} "
                     f"{p['peak_rss_mib']:8.0f} | {b['forward']['wall_ms'] / p['forward']['wall_ms']:9.2f} "
                     f"{b['step']['wall_ms'] / p['step']['wall_ms']:10.2f} {b['peak_rss_mib'] / p['peak_rss_mib']:9.2f}")
        print(line)
    print(f"(medians of {args.iters} runs each; ratios are bmc / PyTorch; method {args.method})")


if __name__ == "__main__":
    main()
