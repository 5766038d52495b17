#!/usr/bin/env bash
# Set up everything wam needs on a fresh Debian/Ubuntu machine: the GL libraries for offscreen
# MuJoCo rendering (EGL, with OSMesa as fallback), Chromium for the report test, a virtualenv in .venv, a CPU build of PyTorch
# and wam itself (editable, with test extras). Safe to run again: it skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
TORCH_VERSION=${WAM_TORCH_VERSION:-2.13.0}
# chromium: tests/test_report.py opens a study report headless (plots drawn, H.264 videos decoded)
APT_PACKAGES="libegl1 libgl1 libosmesa6 libglib2.0-0 chromium"

missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ]; then
    echo "setup: please install these system packages for offscreen rendering:$missing" >&2
  else
    echo "setup: installing system packages:$missing"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

stamp=.venv/.wam-setup-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Pin torch first: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION}"
.venv/bin/python -m pip install -q -e ".[test]"
rm -f .venv/.wam-setup-* && touch "$stamp"
echo "setup: done (.venv)"
