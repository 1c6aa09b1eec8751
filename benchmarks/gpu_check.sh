#!/usr/bin/env bash
# The GPU checks in one go, for the lent CUDA machine (about 5 minutes there): the tests marked
# gpu, then the GPU table of benchmarks/ensemble_throughput.py (the K = 50 captured ensemble
# against one network; target <= 2x). Prepare here with `bash benchmarks/gpu_wheels.sh`, then
# call the device tool with command "bash benchmarks/gpu_check.sh", carry [".whl"] and a
# timeout_s of about 480. Exits with the tests' status; the table is printed either way.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .whl ]; then  # packages the machine lacks, carried as wheels (no index there)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
"$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")' || exit 2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c 'import torch; print("torch", torch.__version__)'
timeout 240 "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider
tests=$?
timeout 180 "$PYTHON" benchmarks/ensemble_throughput.py --device cuda --gpu-table
exit "$tests"
