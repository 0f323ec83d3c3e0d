# bmc: multimodal-imbalance methods compiled to ONNX graphs, run on ONNX Runtime.
#   make demo   sets everything up and trains Baseline, OGM-GE and AGM on synth-av
#   make test   vet + every test (fetches ONNX Runtime, installs the ONNX checker), then a sweep
#               on a real single-node Slurm cluster (installs Slurm and munge; needs root)
#   make ort-cuda  adds ONNX Runtime's CUDA provider libraries beside the core (not part of make test)
#   make gpu-carry packs what tools/gpu/check.sh needs on a GPU machine into .gpu-carry/

ORT_VERSION := 1.29.0
# sha256 of package/bin/napi-v6/linux/x64/libonnxruntime.so.1 in onnxruntime-node@$(ORT_VERSION)
ORT_SHA256  := 89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d
CACHE_HOME  := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
ORT_LIB     := $(CACHE_HOME)/bmc/onnxruntime-$(ORT_VERSION)/libonnxruntime.so.1
export BMC_ORT_LIB ?= $(ORT_LIB)
# The CUDA execution provider (built for CUDA 13) from ORT $(ORT_VERSION), from the npm package
# com.github.asus4.onnxruntime.linux-x64-gpu; sha256 of its npm tarball.
ORT_CUDA_PKG    := 0.4.9
ORT_CUDA_SHA256 := 2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
ORT_CUDA_LIB    := $(dir $(ORT_LIB))libonnxruntime_providers_cuda.so

RUNS ?= runs/demo

.PHONY: all ort ort-cuda gpu-carry checker build test test-slurm demo bench clean

all: build

# ONNX Runtime's shared library from the npm registry (no install scripts run), cached and checksum-verified.
ort: $(ORT_LIB)
$(ORT_LIB):
	tools/fetch-ort.sh $(ORT_VERSION) $(ORT_SHA256) $@

# ONNX Runtime's CUDA provider libraries beside the core library (230 MB; too big for CI).
ort-cuda: $(ORT_CUDA_LIB)
$(ORT_CUDA_LIB): | $(ORT_LIB)
	tools/fetch-ort-cuda.sh $(ORT_CUDA_PKG) $(ORT_CUDA_SHA256) $(ORT_VERSION) $(dir $@)

# Everything tools/gpu/check.sh needs on a GPU machine without Go or a registry, in parts small
# enough to carry one per device call (tools/gpu/README.md says how).
gpu-carry: ort-cuda build
	tools/gpu/pack.sh $(ORT_LIB) .gpu-carry

# Debian's python3-onnx checks every ONNX file bmc writes, independently of bmc.
checker:
	@/usr/bin/python3 -c 'import onnx' 2>/dev/null || tools/install-checker.sh

build:
	go build -o bin/bmc ./cmd/bmc

test: ort checker build
	go vet ./...
	go test ./...
	tools/slurm/test.sh bin/bmc

# bmc sweep --executor slurm on a Slurm cluster started on this machine for the test.
test-slurm: ort build
	tools/slurm/test.sh bin/bmc

demo: ort build
	rm -rf $(RUNS)
	bin/bmc train --method baseline --dataset synth-av --out $(RUNS)/baseline --quiet
	bin/bmc train --method ogm --hp method=OGM_GE --dataset synth-av --out $(RUNS)/ogm-ge --quiet
	bin/bmc train --method agm --dataset synth-av --out $(RUNS)/agm --quiet
	@echo
	bin/bmc report $(RUNS)/baseline $(RUNS)/ogm-ge $(RUNS)/agm

# Microbenchmarks, then the two-ResNet18 step against PyTorch at both sizes
# and thread counts (tools/bench/install-torch.sh installs PyTorch; without it
# only bmc's side is printed). BENCH_ROUNDS interleaved rounds (default 2) give each ratio a range.
bench: ort build
	go test -run '^$$' -bench . -skip ResNet18AVStep -benchmem ./...
	go test -run '^$$' -bench ResNet18AVStep -benchtime 10x ./runtime
	/usr/bin/python3 tools/bench/compare.py --bmc bin/bmc --sizes bench,ks --threads 1,2 --iters $(or $(BENCH_ITERS),10) --rounds $(or $(BENCH_ROUNDS),2)

clean:
	rm -rf bin runs plans
