#!/usr/bin/env bash
# The GPU check as one device command, from the repository root of a copy that carries .whl/
# and .gpu/ (both made by experiments/gpu/pack.py: hydra-core, omegaconf, albumentations and their
# dependencies for Python 3.12; SVHN's layouts). Within 8 minutes wall: install ~20 s, rendering
# and caching the stand-in on the device's cores ~1 min, the loader alone 10 s, training MINUTES
# (default 5), the test set a few seconds.
#   run: bash experiments/gpu/run.sh            (OUT is the device tool's output folder)
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD NO_ALBUMENTATIONS_UPDATE=1   # no registry to ask
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
python3 experiments/gpu/check.py --data .gpu/street --labels .gpu/labels --minutes "${MINUTES:-5}" \
    --out "${OUT:-gpu_check}" "$@"
