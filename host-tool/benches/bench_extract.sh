#!/bin/sh
# Time `nnblob extract` (release build) against `torch.load` on the same >= 500 MB checkpoint, side by
# side in one hyperfine run. Needs hyperfine and a Python with torch (PYTHON, default python3).
#
#   python3 host-tool/benches/make_big_checkpoint.py          # once: tests/fixtures/local/vgg16.pth
#   host-tool/benches/bench_extract.sh [CHECKPOINT]
set -eu
cd "$(dirname "$0")/../.."
ckpt=${1:-tests/fixtures/local/vgg16.pth}
python=${PYTHON:-python3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release -p nnblob --quiet
nnblob=$(cargo metadata --format-version 1 --no-deps | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/nnblob
ls -l "$ckpt"
hyperfine --warmup 2 --runs "${RUNS:-10}" --export-markdown "$out/table.md" \
  -n "nnblob extract" "$nnblob extract $ckpt -o $out/out.safetensors" \
  -n "nnblob inspect" "$nnblob inspect $ckpt" \
  -n "torch.load" "$python -c 'import torch; torch.load(\"$ckpt\")'" \
  -n "torch.load(mmap=True)" "$python -c 'import torch; torch.load(\"$ckpt\", mmap=True)'" \
  -n "python -c 'import torch' (startup alone)" "$python -c 'import torch'"
cat "$out/table.md"
# torch.load alone, inside one Python process (the import of torch left out).
"$python" - "$ckpt" <<'PY'
import statistics, sys, time
import torch
times = []
for _ in range(5):
    start = time.perf_counter()
    state = torch.load(sys.argv[1])
    times.append(time.perf_counter() - start)
    del state
print(f"torch.load in-process, import excluded: median {statistics.median(times) * 1000:.0f} ms, "
      f"min {min(times) * 1000:.0f} ms over {len(times)} runs")
PY
