#!/usr/bin/env bash
# GPU check of libmaskface_cuda.so, for a machine with an NVIDIA GPU, its driver and nvcc.
# Downloads nothing: it needs only this checkout, CMake, a C++17 compiler and the CUDA toolkit;
# where Node and a built addon (build/Release, carried from a build machine) are there, it also
# asks the addon what it finds (driver, GPUs, libmaskface_cuda.so loaded lazily, providers), and
# where PyTorch with CUDA is there, it times the network's architecture in PyTorch FP32/FP16 as a
# labelled reference (bench/gpu/torch_reference.py).
#
#   bash bench/gpu/check.sh
#
# Prints nvidia-smi and nvcc, builds the CUDA library and its harness in a fresh build folder
# (plain CMake, no Node, no ONNX Runtime), runs the harness (correctness against the CPU
# references, then timings: single-query top-k over 1M x 512 fp16 against the measured device
# copy bandwidth, batched queries/s, fused vs unfused attention masking, alignment), and writes
# everything to bench/results/gpu-<date>.txt, and to $OUT when that is set.
#
# Environment: BUILD_DIR (default build-gpu-check), JOBS (default: all cores),
# CUDA_ARCHS (default: the library's 80-real;90), SANITIZE=1 to also run the correctness
# checks (--quick sizes) under compute-sanitizer memcheck and racecheck, STEP_TIMEOUT (seconds a
# step may take, default 300; the build 900). nvcc is looked for on PATH, then in CUDA_HOME/bin
# and /usr/local/cuda*/bin. Where no CUDA compiler or CMake is there, harness binaries carried
# in $BUILD_DIR (built elsewhere with the same commit) run as they are.
set -uo pipefail
cd "$(dirname "$0")/../.."
stamp=$(date -u +%Y-%m-%d)
mkdir -p bench/results
results=bench/results/gpu-$stamp.txt
build=${BUILD_DIR:-build-gpu-check}
jobs=${JOBS:-$(nproc)}
step_timeout=${STEP_TIMEOUT:-300}

# Every step under a time limit: a hung driver call or kernel must not eat the machine's time.
step() {
  local limit=$1
  shift
  timeout --kill-after=10 "$limit" "$@"
  local status=$?
  [ "$status" -eq 124 ] && echo "(timed out after ${limit} s: $*)"
  return "$status"
}

# nvcc from the toolkit's own bin folder when it is not on PATH.
if ! command -v nvcc > /dev/null; then
  for dir in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
    if [ -n "$dir" ] && [ -x "$dir/bin/nvcc" ]; then
      export PATH="$dir/bin:$PATH"
      break
    fi
  done
fi

run_all() {
  echo "== maskface GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "== host: $(nproc) cores, $(uname -sr), $(cmake --version | head -1)"
  echo "== nvidia-smi"
  step 60 nvidia-smi || echo "(nvidia-smi failed)"
  step 60 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>/dev/null || true
  echo "== nvcc"
  local can_build=1
  nvcc --version || { echo "nvcc not found (PATH, CUDA_HOME/bin, /usr/local/cuda*/bin): using carried binaries in $build"; can_build=0; }
  command -v cmake > /dev/null || { echo "cmake not found: using carried binaries in $build"; can_build=0; }
  echo "== node: $(node --version 2>/dev/null || echo 'not found')"
  echo "== python: $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "== CUDA libraries visible to the loader, and inside PyTorch's environment"
  ldconfig -p 2>/dev/null | grep -E 'lib(cudart|cublas|cublasLt|curand|cudnn|nvinfer|nvonnxparser)\.so' | head -20 || true
  python3 - <<'PY' 2>/dev/null || true
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for root in roots:
    for path in sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "lib*.so*")))[:40]:
        print(path)
PY

  local harness=$build/cuda/cuda_kernels_test
  if [ "$can_build" = 1 ]; then
    echo "== build (fresh $build, -j$jobs)"
    rm -rf "$build"
    local arch_flag=()
    [ -n "${CUDA_ARCHS:-}" ] && arch_flag=("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS")
    local start=$SECONDS
    step 300 cmake -S . -B "$build" -DMASKFACE_ADDON=OFF -DMASKFACE_CUDA=ON -DCMAKE_BUILD_TYPE=Release "${arch_flag[@]}" || return 2
    step 900 cmake --build "$build" -j "$jobs" --target maskface_cuda cuda_kernels_test || return 2
    echo "build: $((SECONDS - start)) s"
  elif [ ! -x "$harness" ]; then
    echo "no compiler and no carried harness at $harness: build it elsewhere (same commit) and carry $build"
    return 2
  fi

  local status=0
  if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool (correctness checks only)"
      step "$step_timeout" compute-sanitizer --tool "$tool" --error-exitcode 3 "$harness" --quick || status=$?
    done
  fi

  echo "== harness: correctness, then timings"
  step "$step_timeout" "$harness" --bench
  local harness_status=$?
  [ "$harness_status" -ne 0 ] && status=$harness_status

  local addon_dirs=()
  for dir in build/Release prebuilds/linux-x64; do
    ls "$dir"/*.node > /dev/null 2>&1 && addon_dirs+=("$dir")
  done
  if command -v node > /dev/null && [ -f dist/esm/cli.js ] && [ "${#addon_dirs[@]}" -gt 0 ]; then
    echo "== the addon on this machine (${addon_dirs[*]}): driver, GPUs, libmaskface_cuda.so loaded lazily, providers"
    for dir in "${addon_dirs[@]}"; do cp "$build"/native/cuda/libmaskface_cuda.so "$dir"/; done
    step "$step_timeout" node dist/esm/cli.js providers || status=4
    echo "== the GPU gallery from JavaScript against the CPU gallery"
    step "$step_timeout" node bench/gpu/node-check.mjs || status=4
  else
    echo "== the addon: skipped (needs node, dist/ and a built addon in build/Release or prebuilds/linux-x64)"
  fi

  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    echo "== PyTorch reference (NOT maskface: same architecture, random weights, PyTorch eager)"
    step "$step_timeout" python3 bench/gpu/torch_reference.py || true
  else
    echo "== PyTorch reference: skipped (no PyTorch with CUDA)"
  fi
  echo "== exit status $status"
  return "$status"
}

run_all 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
echo "results: $results"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT" && cp "$results" "$OUT/"
fi
exit "$status"
