#!/usr/bin/env bash
# Fetch, on this machine, the wheels the lent GPU machine lacks (it has torch, numpy, matplotlib,
# tqdm, filelock, safetensors, pytest and hypothesis, and no package index) into .whl/, which git
# ignores through .git/info/exclude. benchmarks/gpu_check.sh installs them there when the device
# call carries the folder: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .git/info
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2 sb3-contrib==2.9.2
ls .whl
