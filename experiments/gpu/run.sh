#!/usr/bin/env bash
# The GPU check as one device command, from the repository root of a copy that carries .whl/
# (../shared/device/wheels: hydra, omegaconf, mlflow, albumentations for Python 3.12) and
# .gpu/street (experiments/gpu/pack.py). Within 8 minutes wall: install ~30 s, data ~15 s,
# the loader alone 10 s, training MINUTES (default 5), test set a few seconds.
#   run: bash experiments/gpu/run.sh            (OUT is the device tool's output folder)
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
python3 experiments/gpu/check.py --data .gpu/street --minutes "${MINUTES:-5}" \
    --out "${OUT:-gpu_check}" "$@"
