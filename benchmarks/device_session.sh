#!/bin/bash
# The GPU checks, as one prepared script for a lent GPU machine (the `device` tool): it runs from the
# repository root there, writes logs and result tables under $OUT, and needs the wheels the image lacks
# in a carried folder (.whl_tests: av, as an xz-packed unzipped wheel; .whl_backbones: diffusers,
# importlib_metadata).
#
#   bash benchmarks/device_session.sh tests       # gpu_check.py, then the end-to-end tests with CUDA visible
#   bash benchmarks/device_session.sh backbones   # gpu_backbones.py (Wan2.1-1.3B shapes), tests/backbones
#
# With CUDA visible every `--device=auto` in the tests trains and acts on the GPU, so these tests are the
# end-to-end check of train -> checkpoint -> load -> act on CUDA (the unit tests ran there on 2026-12-04:
# benchmarks/results/device_2026-12-04/). Left out (packages this image lacks):
# Meta-World/MuJoCo (tests/envs collect and env tests), the serve wire format (msgpack, websockets).
# Make the folders here first (Python 3.12 wheels; the carry is 64 MiB with the tree, ~36 MB of it tracked):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 -d /tmp/w \
#       av diffusers importlib_metadata
#   (cd /tmp/u && unzip -q /tmp/w/av-*.whl && tar cf - . | xz -9) > .whl_tests/av.tar.xz   # 35 MB -> 24 MB
#   cp /tmp/w/diffusers-*.whl /tmp/w/importlib_metadata-*.whl .whl_backbones/
# and list them in .git/info/exclude; the device call names the folder in `carry`.
set -u
mode=${1:?usage: device_session.sh tests|backbones}
[ -d ".whl_$mode" ] || { echo "device_session.sh: no .whl_$mode folder here: carry it (see the top of this file)" >&2; exit 2; }
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
wheels=.whl_$mode
mkdir -p /tmp/site
for w in "$wheels"/*.whl; do [ -e "$w" ] || continue
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$w" || exit 3; done
for t in "$wheels"/*.tar.xz; do [ -e "$t" ] || continue  # an unzipped wheel, xz-packed to fit the 64 MiB carry
  python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp/site', filter='data')" "$t" || exit 3; done
export PYTHONPATH=$PWD/src:$PWD/benchmarks:/tmp/site PYTHONUNBUFFERED=1 WAM_COMMIT=${WAM_COMMIT:-unknown}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), torch.cuda.get_device_capability())"
} 2>&1 | tee "$OUT/env_$mode.txt"

if [ "$mode" = tests ]; then
  (cd benchmarks && timeout 150 python3 gpu_check.py --steps 50 --batch 32 --depth 4) 2>&1 | tee "$OUT/gpu_check.log"
  cp benchmarks/results/gpu_check.md "$OUT/" 2>/dev/null
  # the end-to-end files first (train, pretrain, resume, load, act on CUDA), one thread a worker: the whole
  # suite with 12 workers x 16 threads did not finish in 330 s on the first H200 (2026-12-04), before them
  e2e="tests/test_train.py tests/test_pretrain.py tests/test_trainer.py tests/test_train_actionless.py
    tests/test_offline_eval.py tests/test_checkpoint.py tests/test_policy.py tests/test_probe.py
    tests/test_action_labels.py tests/test_planning.py tests/test_reference.py"
  OMP_NUM_THREADS=1 timeout 330 python3 -m pytest -n 14 -v -rfE --timeout 200 -p no:cacheprovider $e2e \
    > "$OUT/pytest_cuda.log" 2>&1
  echo "pytest rc $?" | tee -a "$OUT/pytest_cuda.log"
  grep -E "FAILED|ERROR" "$OUT/pytest_cuda.log" | sort | uniq | head -60
  tail -n 3 "$OUT/pytest_cuda.log"
else
  timeout 200 python3 benchmarks/gpu_backbones.py --steps 20 --batch 8 --image_size 256 2>&1 | tee "$OUT/gpu_backbones.log"
  timeout 180 python3 benchmarks/gpu_backbones.py --steps 20 --batch 8 --image_size 256 --lora 16 --mot \
    --checkpointing 2>&1 | tee -a "$OUT/gpu_backbones.log"
  cp benchmarks/results/gpu_backbones.md "$OUT/" 2>/dev/null
  timeout 150 python3 -m pytest -n 8 -v -rfE --timeout 120 -p no:cacheprovider tests/backbones \
    > "$OUT/pytest_backbones_cuda.log" 2>&1
  echo "pytest rc $?" | tee -a "$OUT/pytest_backbones_cuda.log"
  grep -E "FAILED|ERROR" "$OUT/pytest_backbones_cuda.log" | sort | uniq | head -40
  tail -n 3 "$OUT/pytest_backbones_cuda.log"
fi
