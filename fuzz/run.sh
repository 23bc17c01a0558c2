#!/usr/bin/env bash
# Builds the fuzz targets, then runs each for SECONDS (default 30), one after the other.
# Fails if any target finds a crash, a slow input (-timeout) or a memory blow-up
# (-rss_limit_mb); the input is kept under fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
[[ $# -gt 0 ]] && shift
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=(policy_loader proxy_lines sse_chunks rfc3339)
fi

# -a: debug assertions on, so arithmetic overflow is a crash too. No AddressSanitizer: the
# code fuzzed is safe Rust and the targets check their properties with assertions, so it
# would only double the build and the run time.
fuzz=(cargo "+$toolchain" fuzz)
build_flags=(-a --sanitizer none)

echo "== building the fuzz targets"
"${fuzz[@]}" build "${build_flags[@]}"

failed=()
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus; the committed seeds in fuzz/corpus/ are only read.
  scratch="fuzz/target/corpus/$target"
  mkdir -p "$scratch" "fuzz/artifacts/$target"
  options=(
    -max_total_time="$seconds"
    -timeout=10
    -rss_limit_mb=1024
    -print_final_stats=1
  )
  if [[ -f "fuzz/dict/$target.dict" ]]; then
    options+=(-dict="fuzz/dict/$target.dict")
  fi
  echo "== $target: $seconds s"
  if ! "${fuzz[@]}" run "${build_flags[@]}" "$target" "$scratch" "fuzz/corpus/$target" -- "${options[@]}"; then
    failed+=("$target")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "== fuzzing found nothing in ${targets[*]}"
