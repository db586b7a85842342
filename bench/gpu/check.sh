#!/usr/bin/env bash
# GPU check of libmaskface_cuda.so, for a machine with an NVIDIA GPU, its driver and nvcc.
# Downloads nothing: it needs only this checkout, CMake, a C++17 compiler and the CUDA toolkit.
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
# checks under compute-sanitizer memcheck and racecheck (slow: minutes).
set -uo pipefail
cd "$(dirname "$0")/../.."
stamp=$(date -u +%Y-%m-%d)
mkdir -p bench/results
results=bench/results/gpu-$stamp.txt
build=${BUILD_DIR:-build-gpu-check}
jobs=${JOBS:-$(nproc)}

run_all() {
  echo "== maskface GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "== host: $(nproc) cores, $(uname -sr), $(cmake --version | head -1)"
  echo "== nvidia-smi"
  nvidia-smi || echo "(nvidia-smi failed)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>/dev/null || true
  echo "== nvcc"
  nvcc --version || { echo "nvcc not found: put the CUDA toolkit's bin/ on PATH"; return 2; }

  echo "== build (fresh $build, -j$jobs)"
  rm -rf "$build"
  local arch_flag=()
  [ -n "${CUDA_ARCHS:-}" ] && arch_flag=("-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS")
  local start=$SECONDS
  cmake -S . -B "$build" -DMASKFACE_ADDON=OFF -DMASKFACE_CUDA=ON -DCMAKE_BUILD_TYPE=Release "${arch_flag[@]}" || return 2
  cmake --build "$build" -j "$jobs" --target maskface_cuda cuda_kernels_test || return 2
  echo "build: $((SECONDS - start)) s"
  local harness=$build/cuda/cuda_kernels_test

  local status=0
  if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool (correctness checks only)"
      compute-sanitizer --tool "$tool" --error-exitcode 3 "$harness" --check-only || status=$?
    done
  fi

  echo "== harness: correctness, then timings"
  "$harness" --bench
  local harness_status=$?
  [ "$harness_status" -ne 0 ] && status=$harness_status
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
