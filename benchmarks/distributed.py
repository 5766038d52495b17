"""`wam train` on 1 process vs 2 processes (gloo, DDP and FSDP2) with the same global batch: wall time,
samples/s as a ratio to the single process, and how far the loss curves are apart; then a rank
killed with SIGKILL and the run resumed under the same launcher.

    .venv/bin/python benchmarks/distributed.py [--steps 20] [--batch 8] [--data PATH]

Without `--data`, a tiny synthetic dataset (the tests' moving squares) is written to a temporary
folder. The single process accumulates the 2 micro-batches the 2 processes run side by side
(`--optim.micro_batch=batch/2`), so the curves must agree (DDP: to the bit). On 2 shared CPU cores
two processes cannot be faster than one: the samples/s ratio shows the cost of the launcher and the
all-reduce, not a GPU's speed-up. Results are appended to benchmarks/results/distributed.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import append, header

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--paradigm=joint", "--data.image_size=32", "--tokenizer.steps=10", "--tokenizer.batch_size=16",
        "--tokenizer.base_channels=8", "--tokenizer.latent_channels=4", "--policy.backbone.depth=2",
        "--policy.backbone.width=64", "--policy.future=2,4", "--policy.chunk=3", "--policy.sample_steps=2",
        "--optim.log_every=1", "--optim.val_every=1000", "--optim.precision=fp32", "--text_encoder=hash"]


def launch(nproc: int, args: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "wam", "train", *args]
    if nproc > 1:
        cmd[1:3] = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_port=29533", "-m", "wam"]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def curve(run: Path) -> tuple[list[float], float]:
    """The logged losses and the mean logged samples/s after the first step (warm-up excluded)."""
    sys.path.insert(0, str(ROOT / "src"))
    from wam.runs.train_log import read_log

    rows = read_log(run / "log.csv")
    rates = [float(r["samples_per_s"]) for r in rows[1:]]
    return [float(r["loss"]) for r in rows], sum(rates) / max(len(rates), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--data", default="")
    a = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wam_dist_"))
    data = Path(a.data) if a.data else tmp / "data"
    if not a.data:
        sys.path.insert(0, str(ROOT))
        from tests.conftest import write_dataset

        write_dataset(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    common = [f"--data.path={data}", f"--optim.steps={a.steps}", f"--optim.batch_size={a.batch}",
              f"--optim.ckpt_every={a.steps // 2}", *TINY]
    runs = {"1 process, 2 micro-batches": (1, [f"--optim.micro_batch={a.batch // 2}"]),
            "2 gloo processes, ddp": (2, ["--optim.distributed=ddp"]),
            "2 gloo processes, fsdp": (2, ["--optim.distributed=fsdp"])}
    lines = [*header("distributed.py"), f"`wam train` joint, tiny (2 layers, width 64, 32 px), {a.steps} steps, "
             f"global batch {a.batch}, OMP_NUM_THREADS=1", "",
             "| run | wall s (launch included) | samples/s | ratio to 1 process | max abs loss difference |",
             "|---|---|---|---|---|"]
    base = None
    for i, (name, (nproc, extra)) in enumerate(runs.items()):
        seconds, done = launch(nproc, [*common, *extra, f"--out={tmp / str(i)}"], env)
        if done.returncode:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        losses, rate = curve(tmp / str(i))
        base = base or (losses, rate)
        gap = max(abs(x - y) for x, y in zip(losses, base[0]))
        lines.append(f"| {name} | {seconds:.1f} | {rate:.1f} | {rate / base[1]:.2f} | {gap:.2g} |")
    lines += ["", resume_check(tmp, common, env)]
    append("distributed", "Many processes (benchmarks/distributed.py)", lines)


def resume_check(tmp: Path, common: list[str], env: dict) -> str:
    """Kill rank 1 with SIGKILL after the first checkpoint, rerun the same torchrun line, compare the
    final weights with the uninterrupted 2-process run (run '1' above)."""
    import signal

    import torch

    run = tmp / "resumed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29534", "-m", "wam",
           "train", *common, f"--out={run}"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run / "checkpoints" / "last").exists() and proc.poll() is None:
        time.sleep(0.05)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    ranks = [int(p) for p in children if b"wam" in Path(f"/proc/{p}/cmdline").read_bytes()]
    if proc.poll() is not None or len(ranks) < 2:
        return "resume: the run ended before a rank could be killed (use more --steps)"
    os.kill(max(ranks), signal.SIGKILL)
    proc.wait()
    sys.path.insert(0, str(ROOT / "src"))
    from wam.checkpoint import load_checkpoint

    at = load_checkpoint(run).state["step"]
    start = time.perf_counter()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if again.returncode:
        return f"resume: the rerun failed: {again.stderr[-500:]}"
    a, b = load_checkpoint(run), load_checkpoint(tmp / "1")
    same = all(torch.equal(a.model[k], b.model[k]) for k in b.model)
    return (f"resume: a rank killed (SIGKILL) with the last checkpoint at step {at} (exit {proc.returncode}); "
            f"the same torchrun line again resumed and finished at step {a.state['step']} in {seconds:.1f} s; "
            f"weights {'equal to the bit to' if same else 'DIFFERENT from'} the uninterrupted 2-process run")


if __name__ == "__main__":
    main()
