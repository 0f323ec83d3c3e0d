#!/usr/bin/env python3
"""Peak memory of a graph's live intermediate tensors under an execution
order: a value lives from its producer until its last reader (graph
outputs and constants are not counted). Orders: the file's node order,
ONNX Runtime's default order as bmc models it (a depth-first search from
the leaves, last leaf first, inputs explored from the highest node index
down; see graph.OrderForReverseDFS) and, with --trace, the order ONNX
Runtime really ran (the last run of a `bmc bench/train --profile` trace).

Usage: /usr/bin/python3 tools/bench/liveness.py PLAN/train.onnx [--trace TRACE.json]
Needs python3-onnx (make checker). Compare the peaks with the
mem_bytes_in_use ONNX Runtime records in the trace to see what its
allocation adds.
"""

import argparse
import collections
import json
import sys

import onnx

BYTES = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.BOOL: 1, onnx.TensorProto.DOUBLE: 8}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--trace")
    args = ap.parse_args()
    try:
        g = onnx.load(args.model, load_external_data=False).graph
    except Exception as e:  # onnx raises several types for unreadable files
        sys.exit(f"liveness: {args.model}: {e}")
    size = {}
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        t = vi.type.tensor_type
        n = 1
        for d in t.shape.dim:
            n *= d.dim_value
        size[vi.name] = n * BYTES.get(t.elem_type, 4)
    producer = {o: i for i, n in enumerate(g.node) for o in n.output}
    inputs = [sorted({producer[x] for x in n.input if x in producer}) for n in g.node]
    read = set(p for ins in inputs for p in ins)
    outputs = {o.name for o in g.output}

    def peak(order):
        last = {}
        for k, i in enumerate(order):
            for x in g.node[i].input:
                last[x] = k
        live, cur, best, at = {}, 0, 0, None
        for k, i in enumerate(order):
            n = g.node[i]
            for o in n.output:
                if o not in outputs and n.op_type != "Constant":
                    live[o] = size.get(o, 0)
                    cur += live[o]
            if cur > best:
                best, at = cur, n.name
            for x in n.input:
                if last.get(x) == k and x in live:
                    cur -= live.pop(x)
        return best / 2**20, at

    print("file order:  %.1f MiB at %s" % peak(list(range(len(g.node)))))
    order, seen, stack = [], [False] * len(g.node), [(i, False) for i in range(len(g.node)) if i not in read]
    while stack:
        i, leave = stack.pop()
        if leave:
            order.append(i)
        elif not seen[i]:
            seen[i] = True
            stack.append((i, True))
            stack.extend((p, False) for p in inputs[i])
    print("ORT model:   %.1f MiB at %s" % peak(order))
    if args.trace:
        with open(args.trace) as f:
            events = json.load(f)
        runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                      key=lambda e: e["ts"])
        if not runs:
            sys.exit(f"liveness: {args.trace} holds no run")
        r = runs[-1]
        ran = sorted((e for e in events if e.get("cat") == "Node" and r["ts"] <= e["ts"] <= r["ts"] + r["dur"]
                      and e["name"].endswith("_kernel_time")), key=lambda e: e["ts"])
        index = {n.name: i for i, n in enumerate(g.node)}
        traced = [index[e["name"][:-len("_kernel_time")]] for e in ran if e["name"][:-len("_kernel_time")] in index]
        ort_peak = max(int(e["args"].get("mem_bytes_in_use", 0)) for e in ran) / 2**20
        left = collections.Counter(g.node[i].op_type for i in set(range(len(g.node))) - set(traced))
        print("traced:      %.1f MiB at %s" % peak(traced))
        print(f"ONNX Runtime's own peak in use: {ort_peak:.1f} MiB; file nodes not in the trace "
              f"(folded or fused by ORT): {dict(left.most_common(5))}")


if __name__ == "__main__":
    main()
