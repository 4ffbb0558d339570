#!/usr/bin/env bash
# The GPU checks as one prepared command, for a lent GPU machine (CI never has one).
#
#   bash scripts/device-check.sh
#
# Run in the repository root of the GPU machine. It installs this checkout, without its
# dependencies, into that machine's Python (which has torch and the rest; nothing can be
# downloaded there), then, most important first and each under a share of the time budget:
# the CUDA tests, the GPU benchmarks (which write docs/perf/*-cuda.md), and the whole test suite.
# Everything it prints goes to device-check.log and the fragments are copied, both into $OUT
# (./device-out when unset). For the real-FLO figures and real-data tests, copy the data into
# the (git-ignored) checkout first, carry it along and point ZSBENCH_DATA at it:
#   mkdir -p .device-data && cp -r ../shared/data/flo .device-data/    (about 31 MB)
#   ZSBENCH_DATA=.device-data bash scripts/device-check.sh
# With ../shared/data/cub50 copied there too (27 MB), the cub50 step times CLAREL's CNN-BiLSTM at
# the paper's sizes, unchanged, on the real cub50 captions.
# BUDGET is the seconds it may take (540).
# It exits non-zero when any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
mkdir -p "$out"
log="$out/device-check.log"
py=${PYTHON:-python3}
deadline=$((SECONDS + ${BUDGET:-540}))
failed=()

# step NAME CAP_SECONDS COMMAND...: runs COMMAND for at most CAP seconds (less if the budget is
# nearly spent), appending its output to the log.
step() {
    local name=$1 cap=$2
    shift 2
    local left=$((deadline - SECONDS))
    ((left < cap)) && cap=$left
    if ((cap < 20)); then
        echo "== $name: skipped, the time budget is spent" | tee -a "$log"
        failed+=("$name(no time)")
        return
    fi
    echo "== $name (at most ${cap}s): $*" | tee -a "$log"
    local start=$SECONDS
    timeout "$cap" "$@" >>"$log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$log"
    ((rc == 0)) || failed+=("$name")
}

: >"$log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$log" 2>&1
step install 120 "$py" -m pip install -q --no-deps --no-build-isolation --no-index -e .
step versions 60 "$py" -c "import torch, zsbench; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)); print('zsbench', zsbench.__version__)"
ZSBENCH_REQUIRE_CUDA=1 step cuda-tests 180 "$py" -m pytest -q -p no:cacheprovider -m cuda -rs tests/gpu/test_cuda.py tests/gpu/test_cuda_backbones.py
step perf-calibration 60 "$py" benchmarks/perf_calibration.py --device cuda
step perf-clarel 150 "$py" benchmarks/perf_clarel.py --device cuda --threads 0
if [ -f "${ZSBENCH_DATA:-../shared/data}/cub50/efficientnet_lite0.mat" ]; then
    step cub50 120 "$py" benchmarks/perf_clarel.py --device cuda --threads 0 --text-data cub50 \
        --modes cnn-all,cnn-k1 --fragment captions-cub50
fi
step perf-features 90 "$py" benchmarks/perf_features.py --device cuda --threads 0
step perf-backbones 90 "$py" benchmarks/perf_backbones.py --device cuda --threads 0
parallel=()
"$py" -c "import xdist" 2>/dev/null && parallel=(-n 8)
ZSBENCH_TEST_DATA=${ZSBENCH_DATA:+$(realpath "$ZSBENCH_DATA")} step all-tests 400 "$py" -m pytest -q -p no:cacheprovider -rs "${parallel[@]}"
cp docs/perf/*-cuda.md "$out"/ 2>/dev/null

if ((${#failed[@]})); then
    echo "device check: FAILED: ${failed[*]} (see $log)"
    exit 1
fi
echo "device check: every step passed (see $log)"
