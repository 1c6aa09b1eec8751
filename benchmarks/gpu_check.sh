#!/usr/bin/env bash
# The GPU checks in one go, for a machine with CUDA (a few minutes): the tests marked gpu, then
# the GPU table of benchmarks/ensemble_throughput.py (the K=50 captured ensemble against one
# network; target <= 2x). Uses the `python` on PATH; run from anywhere in the repository.
# Exits with the tests' status; the table is printed either way.
set -uo pipefail
cd "$(dirname "$0")/.."
python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")' || exit 2
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
timeout 420 python -m pytest -m gpu -q -p no:cacheprovider
tests=$?
timeout 240 python benchmarks/ensemble_throughput.py --device cuda --gpu-table
exit "$tests"
