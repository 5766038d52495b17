"""Thread counts that share a machine well.

Two things made wam slow beside other work on the same cores:

* OpenMP threads that wait for work spin on their core (libgomp spins ~300,000 times before it
  sleeps), so a second CPU-bound process on the same cores loses most of its time slices: two
  training processes on 2 cores each ran 20-50x slower than alone. `quiet_openmp()` sets
  `OMP_WAIT_POLICY=PASSIVE` (waiting threads sleep) before torch is imported: the `wam` command
  calls it first thing, and worker processes inherit it. A value the user set is kept.
* every process sized itself to the whole machine. `cores()` is what this process may run on
  (`os.sched_getaffinity`), and `share(n)` divides it among the `n` processes wam starts side by
  side (collect and eval workers), so wam itself never oversubscribes the cores.

`worker_env(threads)` is what a worker process needs before it imports torch or the renderer:
OpenMP/MKL threads and Mesa llvmpipe's render threads (`LP_NUM_THREADS`; llvmpipe otherwise starts
one render thread per core in every process). This module imports no torch.
"""

from __future__ import annotations

import os
import sys

QUIET_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}  # libgomp; Intel OpenMP (if linked)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cores() -> int:
    """CPUs this process may run on (its affinity mask; all CPUs where the OS has no such call)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # macOS, Windows
        return max(os.cpu_count() or 1, 1)


def share(processes: int, total: int | None = None) -> int:
    """Threads for each of `processes` processes run side by side on `total` cores (default: ours)."""
    return max((total or cores()) // max(processes, 1), 1)


def quiet_openmp() -> bool:
    """Make waiting OpenMP threads sleep instead of spin (keeps values the user set). Returns False,
    doing nothing, when torch is already imported: OpenMP read its settings then."""
    if "torch" in sys.modules:
        return False
    for key, value in QUIET_OPENMP.items():
        os.environ.setdefault(key, value)
    return True


def worker_env(threads: int) -> dict[str, str]:
    """Environment for a worker process limited to `threads` threads (math libraries and renderer)."""
    n = str(max(threads, 1))
    return {**{k: n for k in THREAD_VARS}, "LP_NUM_THREADS": n, **QUIET_OPENMP}


def apply_worker_env(threads: int) -> None:
    """In a freshly started worker, before torch or mujoco is imported: use `threads` threads
    (values the user set for the renderer are kept); also sets torch's count if torch is loaded."""
    for key, value in worker_env(threads).items():
        if key in THREAD_VARS:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(threads, 1))


def describe() -> str:
    """One line for a run's log: cores, torch threads and the OpenMP wait policy."""
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else "?"
    return (f"threads: {n} of {cores()} cores this process may use, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (spinning)')}")
