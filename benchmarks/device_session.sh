#!/bin/bash
# The GPU checks, as one prepared script for a lent GPU machine (the `device` tool): it runs from the
# repository root there, writes logs and result tables under $OUT, and needs the wheels the image lacks
# in a carried folder (.whl_tests: av, as an xz-packed unzipped wheel; .whl_backbones: diffusers,
# importlib_metadata).
#
#   bash benchmarks/device_session.sh tests       # gpu_check.py, then the test suite with CUDA visible
#   bash benchmarks/device_session.sh backbones   # gpu_backbones.py (Wan2.1-1.3B shapes), tests/backbones
#
# With CUDA visible every `--device=auto` in the tests trains and acts on the GPU, so the suite is the
# end-to-end check of train -> checkpoint -> load -> act on CUDA. Left out (packages this image lacks):
# Meta-World/MuJoCo (tests/envs collect and env tests), the serve wire format (msgpack, websockets).
set -u
mode=${1:?usage: device_session.sh tests|backbones}
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
  timeout 330 python3 -m pytest -n 12 -v -rfE --timeout 120 -p no:cacheprovider tests \
    --ignore=tests/backbones --ignore=tests/serve --ignore=tests/envs/test_collect.py \
    --ignore=tests/envs/test_metaworld.py > "$OUT/pytest_cuda.log" 2>&1
  echo "pytest rc $?" | tee -a "$OUT/pytest_cuda.log"
  grep -E "FAILED|ERROR" "$OUT/pytest_cuda.log" | sort | uniq | head -60
  tail -n 3 "$OUT/pytest_cuda.log"
else
  timeout 200 python3 benchmarks/gpu_backbones.py --steps 20 --batch 8 --image_size 256 2>&1 | tee "$OUT/gpu_backbones.log"
  timeout 120 python3 benchmarks/gpu_backbones.py --steps 20 --batch 8 --image_size 256 --lora 16 --mot \
    --checkpointing 2>&1 | tee -a "$OUT/gpu_backbones.log"
  cp benchmarks/results/gpu_backbones.md "$OUT/" 2>/dev/null
  timeout 150 python3 -m pytest -n 8 -v -rfE --timeout 120 -p no:cacheprovider tests/backbones \
    > "$OUT/pytest_backbones_cuda.log" 2>&1
  echo "pytest rc $?" | tee -a "$OUT/pytest_backbones_cuda.log"
  grep -E "FAILED|ERROR" "$OUT/pytest_backbones_cuda.log" | sort | uniq | head -40
  tail -n 3 "$OUT/pytest_backbones_cuda.log"
fi
