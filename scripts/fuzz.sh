#!/usr/bin/env bash
# libFuzzer runs of the native code that takes outside input (native/fuzz/fuzz_*.cc):
#   fuzz_warp           face alignment: EstimateSimilarity, InvertAffine, WarpToTensor,
#                       WarpToImage, ResizeMap (core/align.h)
#   fuzz_face_geometry  detector and landmark geometry, quality, image pyramid
#                       (core/face_geometry.h, core/image_pyramid.h)
#   fuzz_search         gallery storage and exact top-k search (core/gallery_store.h,
#                       core/cpu_search.h)
#   fuzz_gallery_file   gallery files: Parse of any bytes, and Save of what parses writes the
#                       same bytes (core/gallery_file.h)
#   fuzz_gallery_journal gallery journals: Parse of any bytes, and a journal rewritten from what
#                       parses holds the same bytes (core/gallery_journal.h)
#
#   scripts/fuzz.sh [--quick] [--runs N] [--no-merge] [target...]
#
# Configures build/fuzz with clang (libFuzzer, ASan, UBSan; needs clang and libclang-rt-14-dev
# on Debian), builds, and runs each target one after another for N inputs (default 1,000,000;
# --quick: 20,000) of at most 4096 bytes, starting from its committed corpus
# test/fuzz-corpus/<target>/ (hand-made seed-* inputs, inputs kept by earlier runs, and the
# minimised crash-* inputs of bugs found and fixed, kept as regression inputs). New inputs go to
# build/fuzz/corpus/<target>/; after a clean run the ones that add coverage are merged into the
# committed corpus (libFuzzer -merge=1, edges only, so it stays small: it is minimised again past
# 200 files or 1 MB), unless --no-merge.
#
# A crash, a sanitizer report, a leak, a broken invariant, an input slower than 30 s or over
# 2 GB is a finding: its input is saved under build/fuzz/findings/<target>/ and the script exits
# non-zero once every target has run. Reproduce one with
#   build/fuzz/fuzz/<target> build/fuzz/findings/<target>/crash-...
# and minimise it with -minimize_crash=1 -runs=100000.
# Each target prints one line: `<target>: N runs, S s, 0 findings` (or what it found).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1000000
merge=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) runs=20000 ;;
    --runs) runs="$2"; shift ;;
    --runs=*) runs="${1#--runs=}" ;;
    --no-merge) merge=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_warp fuzz_face_geometry fuzz_search fuzz_gallery_file fuzz_gallery_journal)

for tool in clang clang++ cmake; do
  command -v "$tool" > /dev/null || { echo "fuzz.sh: $tool not found (Debian: apt-get install clang libclang-rt-14-dev cmake)" >&2; exit 2; }
done

build=build/fuzz
echo "== configure and build $build (clang: $(clang++ --version | head -1))"
CC=clang CXX=clang++ cmake -S . -B "$build" -DMASKFACE_ADDON=OFF -DMASKFACE_CUDA=OFF -DMASKFACE_TESTS=OFF \
  -DMASKFACE_FUZZ=ON > "$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j2 > "$build.build.log" 2>&1 || { tail -50 "$build.build.log" >&2; exit 1; }

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
for target in "${targets[@]}"; do
  binary="$build/fuzz/$target"
  corpus="test/fuzz-corpus/$target"
  work="$build/corpus/$target"
  findings="$build/findings/$target"
  log="$build/$target.log"
  [ -x "$binary" ] || { echo "$target: no such target ($binary)" >&2; failed=1; continue; }
  mkdir -p "$corpus" "$work" "$findings"
  start=$(date +%s)
  status=0
  # New inputs are written to the first folder ($work); the committed corpus is only read.
  "$binary" -runs="$runs" -max_len=4096 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/" "$work" "$corpus" > "$log" 2>&1 || status=$?
  seconds=$(( $(date +%s) - start ))
  done_runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1 || true)
  if [ "$status" -ne 0 ] || [ -z "$done_runs" ]; then
    failed=1
    artifact=$(grep -oE 'Test unit written to \S+' "$log" | tail -1 | sed 's/Test unit written to //' || true)
    echo "$target: FINDING after ${seconds} s (exit $status): ${artifact:-see $log}"
    grep -E 'ERROR: |runtime error|fuzz invariant|SUMMARY' "$log" | head -5 | sed 's/^/    /'
    continue
  fi
  echo "$target: $done_runs runs, $seconds s, 0 findings"

  if [ "$merge" -eq 1 ]; then
    # Edges only (-use_counters=0): an input is kept for a new edge, not for a new hit count.
    before=$(find "$corpus" -type f | wc -l)
    "$binary" -merge=1 -use_counters=0 -max_len=4096 "$corpus" "$work" > "$build/$target.merge.log" 2>&1 ||
      { echo "$target: merge failed, see $build/$target.merge.log" >&2; failed=1; continue; }
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    if [ "$files" -gt 200 ] || [ "$bytes" -gt 1048576 ]; then
      # Minimise the whole corpus again, keeping the hand-made seeds and the known bugs' inputs.
      fresh="$build/corpus/$target.min"
      rm -rf "$fresh" && mkdir -p "$fresh"
      find "$corpus" -type f \( -name 'seed-*' -o -name 'crash-*' \) -exec cp {} "$fresh/" \;
      "$binary" -merge=1 -use_counters=0 -max_len=4096 "$fresh" "$corpus" > "$build/$target.merge.log" 2>&1 ||
        { echo "$target: merge failed, see $build/$target.merge.log" >&2; failed=1; continue; }
      find "$corpus" -type f ! -name 'seed-*' ! -name 'crash-*' -delete
      find "$fresh" -type f ! -name 'seed-*' ! -name 'crash-*' -exec cp {} "$corpus/" \;
      rm -rf "$fresh"
      files=$(find "$corpus" -type f | wc -l)
      bytes=$(find "$corpus" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    fi
    echo "    corpus $corpus: $files files (+$(( files - before ))), $bytes bytes"
  fi
done
exit "$failed"
