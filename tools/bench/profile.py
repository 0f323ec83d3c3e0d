#!/usr/bin/env python3
"""Sums an ONNX Runtime trace (`bmc bench --profile PREFIX`, `bmc train
--profile PREFIX`) per phase and op: milliseconds per run, over the last
--runs runs of the session (the earlier ones are warm-up).

Usage: python3 tools/bench/profile.py TRACE.json [--runs 4] [--top 30] [--by op|node]

The phase is the node name's first path element (bmc names nodes
forward/…, backward/…, optimizer/…); --by node groups by the node name
without its trailing counter, which separates, say, a convolution's
weight gradient from its input gradient.
"""

import argparse
import collections
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--runs", type=int, default=4, help="the last N runs are summed (default 4)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--by", choices=["op", "node"], default="op")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error(f"--runs {args.runs}: want at least 1")
    try:
        with open(args.trace) as f:
            events = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"profile: {args.trace}: {e} (want a trace from bmc bench/train --profile)")
    if not isinstance(events, list):
        sys.exit(f"profile: {args.trace}: the top level is not a list of trace events")
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    if len(runs) < args.runs:
        sys.exit(f"profile: {args.trace} holds {len(runs)} runs, fewer than --runs {args.runs}")
    kept = runs[-args.runs:]
    start = kept[0]["ts"]
    per_phase = collections.Counter()
    per_key = collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or e["ts"] < start or not e["name"].endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        phase = name.split("/", 1)[0] if "/" in name else "(top)"
        if args.by == "op":
            key = (phase, e["args"].get("op_name", "?"))
        else:
            key = (phase, re.sub(r"_\d+$", "", name))
        per_phase[phase] += e["dur"]
        per_key[key] += e["dur"]
    run_ms = sum(r["dur"] for r in kept) / 1000 / args.runs
    print(f"{args.trace}: {args.runs} runs, {run_ms:.1f} ms per run")
    for phase, us in per_phase.most_common():
        print(f"  {phase:<12} {us / 1000 / args.runs:9.1f} ms")
    print()
    for (phase, key), us in per_key.most_common(args.top):
        print(f"  {us / 1000 / args.runs:9.1f} ms  {phase:<10} {key}")


if __name__ == "__main__":
    main()
