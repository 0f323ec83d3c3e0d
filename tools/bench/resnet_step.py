#!/usr/bin/env python3
"""PyTorch side of the two-ResNet18 audio-visual benchmark
(runtime/bench_resnet_test.go, BenchmarkResNet18AVStep): the same model,
shapes and optimizer, timed on the CPU.

Model: a ResNet-18 trunk per modality (BalanceBenchmark's ResNet18Encoder:
torchvision resnet18 without avgpool/fc, features mean-pooled over frames and
space), concatenated features, Linear(1024 -> classes). SGD lr 1e-3, momentum
0.9, weight decay 1e-4. Sizes (experiment.BenchRequest): --size bench is batch
8, visual (3, 1, 112, 112), audio (1, 256, 64), 6 classes; --size ks is
Kinetics-Sounds' shapes, batch 8, visual (3, 3, 224, 224), audio
(1, 1024, 128), 31 classes.

Timed: the forward pass in eval mode under no_grad, and one training step
(train-mode forward, cross-entropy, backward, SGD step, zero_grad). Each is
warmed up, then the medians of --iters runs are printed in milliseconds: wall
time and process CPU time (with --threads 1 the CPU time is the work itself,
which other load on the machine barely changes), with the process's peak
resident memory (getrusage).

--device cuda[:N] runs on a GPU (each timed run ends with a synchronize).
--precision: fp32 turns TF32 off for both matrix products and cuDNN
(PyTorch's cuDNN default is TF32 on), tf32 turns it on for both, bf16 runs
the forward and loss under bf16 autocast with fp32 weights (CUDA only).

Needs Debian's python3-torch, python3-torchvision and OpenBLAS
(tools/bench/install-torch.sh). Debian's torch runs convolution backward
through the system BLAS, so the library the process loaded is printed.
Usage: /usr/bin/python3 tools/bench/resnet_step.py [--size bench|ks] [--threads 2] [--iters 10]
       [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16] [--json] [--profile-steps N]
--profile-steps N also prints torch.profiler's per-op table over N more
training steps (self CPU time per op, totals over the N steps).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time


# size -> (classes, audio sample shape, visual sample shape (C, T, H, W))
SIZES = {"bench": (6, (1, 256, 64), (3, 1, 112, 112)), "ks": (31, (1, 1024, 128), (3, 3, 224, 224))}


def parse_args():
    ap = argparse.ArgumentParser(description="Times the two-ResNet18 audio-visual step in PyTorch.")
    ap.add_argument("--size", choices=sorted(SIZES), default="bench")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--profile-steps", type=int, default=0, help="print torch.profiler's per-op table over N more steps")
    args = ap.parse_args()
    if args.device != "cpu" and not args.device.startswith("cuda"):
        ap.error(f"--device {args.device}: want cpu, cuda or cuda:N")
    if args.device == "cpu" and args.precision != "fp32":
        ap.error(f"--precision {args.precision}: the CPU runs fp32 only here (tf32 and bf16 need --device cuda)")
    return args


ARGS = parse_args()
# BLAS and OpenMP read their thread counts when torch loads them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))

import torch  # noqa: E402
import torchvision  # noqa: E402


class Encoder(torch.nn.Module):
    """ResNet-18 trunk; (B, C, T, H, W) samples are encoded frame by frame."""

    def __init__(self, in_channels):
        super().__init__()
        m = torchvision.models.resnet18()
        if in_channels != 3:
            m.conv1 = torch.nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.stem = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)
        self.layers = torch.nn.Sequential(m.layer1, m.layer2, m.layer3, m.layer4)

    def forward(self, x):
        if x.dim() == 5:
            b, c, t, h, w = x.shape
            x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            y = self.layers(self.stem(x))
            return y.view(b, t, *y.shape[1:]).mean(dim=(1, 3, 4))
        return self.layers(self.stem(x)).mean(dim=(2, 3))


class AVClassifier(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.audio = Encoder(1)
        self.visual = Encoder(3)
        self.fc_out = torch.nn.Linear(1024, classes)

    def forward(self, audio, visual):
        return self.fc_out(torch.cat([self.audio(audio), self.visual(visual)], dim=1))


def median_ms(fn, warmup, iters, sync=lambda: None):
    """Median wall time and median process CPU time of fn, in milliseconds
    (sync waits for the device's queued work)."""
    for _ in range(warmup):
        fn()
    sync()
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def blas_library():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    return ", ".join(sorted(os.path.realpath(p) for p in libs)) or "none loaded"


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    device = torch.device(ARGS.device)
    sync = lambda: None  # noqa: E731
    if device.type == "cuda":
        tf32 = ARGS.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        sync = lambda: torch.cuda.synchronize(device)  # noqa: E731
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=ARGS.precision == "bf16")
    classes, audio_shape, visual_shape = SIZES[ARGS.size]
    model = AVClassifier(classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
    audio = torch.randn(ARGS.batch, *audio_shape).to(device)
    visual = torch.randn(ARGS.batch, *visual_shape).to(device)
    labels = torch.randint(0, classes, (ARGS.batch,)).to(device)

    def forward():
        with torch.no_grad(), autocast:
            model(audio, visual)

    def step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(audio, visual), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.eval()
    fwd, fwd_cpu = median_ms(forward, ARGS.warmup, ARGS.iters, sync)
    model.train()
    stp, stp_cpu = median_ms(step, ARGS.warmup, ARGS.iters, sync)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    if ARGS.profile_steps > 0:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(ARGS.profile_steps):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)
    if ARGS.json:
        print(json.dumps({"framework": "pytorch " + torch.__version__, "size": ARGS.size, "threads": ARGS.threads,
                          "device": ARGS.device, "precision": ARGS.precision, "batch": ARGS.batch, "blas": blas_library(),
                          "forward": {"wall_ms": fwd, "cpu_ms": fwd_cpu}, "step": {"wall_ms": stp, "cpu_ms": stp_cpu},
                          "step_per_forward": stp / fwd, "peak_rss_mib": rss_mib}))
        return
    print(f"pytorch {torch.__version__} size={ARGS.size} device={ARGS.device} precision={ARGS.precision} "
          f"threads={ARGS.threads} batch={ARGS.batch} blas={blas_library()}")
    print(f"pytorch forward {fwd:.1f} ms ({fwd_cpu:.1f} cpu-ms), step {stp:.1f} ms ({stp_cpu:.1f} cpu-ms), "
          f"step/forward {stp / fwd:.2f} (medians of {ARGS.iters}), peak RSS {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
