"""wam.runs.threads: cores shared among wam's processes, quiet OpenMP set before torch starts."""

from __future__ import annotations

import os
import sys

import torch  # noqa: F401  (imported, as in any process that trains)

from wam.runs import threads


def test_share_never_oversubscribes():
    assert threads.share(1, total=4) == 4
    assert threads.share(2, total=4) == 2
    assert threads.share(2, total=2) == 1
    assert threads.share(3, total=2) == 1  # at least one each
    assert 1 <= threads.share(2) <= threads.cores() <= (os.cpu_count() or 1)


def test_quiet_openmp_only_before_torch(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert "torch" in sys.modules and threads.quiet_openmp() is False
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delitem(sys.modules, "torch")
    assert threads.quiet_openmp() is True
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice is kept
    threads.quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_worker_env_limits_math_and_renderer(monkeypatch):
    monkeypatch.setattr(os, "environ", dict(os.environ))  # nothing leaks into the other tests
    env = threads.worker_env(1)
    assert env["OMP_NUM_THREADS"] == env["LP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    monkeypatch.setenv("LP_NUM_THREADS", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    import torch

    before = torch.get_num_threads()
    try:
        threads.apply_worker_env(1)
        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["LP_NUM_THREADS"] == "0"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
