"""Many processes, one run (gloo on the CPU): 2 ranks == 1 process accumulating the same micro-batches,
only rank 0 writes, and a run whose rank is killed -9 resumes under the same launcher."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.test_trainer import Denoiser, Points, collate
from wam.checkpoint import load_checkpoint
from wam.errors import ConfigError, WamError
from wam.runs import distributed
from wam.runs.train_log import read_log
from wam.trainer import EpochSampler, OptimConfig, noise_generator, train

CFG = dict(steps=20, batch_size=8, lr=1e-2, warmup=3, log_every=1, val_every=10, ckpt_every=5, precision="fp32")
VAL = [collate([Points()[i] for i in range(8)])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, run_dir: str, steps: int, engine: str, queue) -> None:
    """One process of a `world`-process run, set up as torchrun would (its environment variables)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, cfg = Denoiser(), OptimConfig(**{**CFG, "steps": steps, "ckpt_every": min(steps, 5), "distributed": engine})
    train(model, Points(), collate, cfg, run_dir, "toy", cfg, val_batches=VAL, progress=False)
    weights = {k: distributed.full(v).numpy().copy() for k, v in model.state_dict().items()}
    drift = distributed.warn_if_diverged(model, steps)
    if engine == "ddp" and rank == 1:
        with torch.no_grad():
            model.net[0].bias.add_(1.0)  # as a model that edits its weights in forward would
    queue.put((rank, (weights, drift, distributed.warn_if_diverged(model, steps))))


def _one_process(run_dir: Path, steps: int, **over) -> Denoiser:
    torch.manual_seed(0)
    model, cfg = Denoiser(), OptimConfig(**{**CFG, "steps": steps, "ckpt_every": min(steps, 5), **over})
    train(model, Points(), collate, cfg, run_dir, "toy", cfg, val_batches=VAL, progress=False)
    return model


def _losses(run_dir: Path) -> list[float]:
    return [float(r["loss"]) for r in read_log(run_dir / "log.csv")]


def _two_processes_equal_one_accumulating(tmp_path: Path, capfd, steps: int, engine: str = "ddp") -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    start = time.perf_counter()
    mp.start_processes(_rank, args=(2, _free_port(), str(tmp_path / "two"), steps, engine, queue), nprocs=2,
                       start_method="spawn")
    finals, drift = {}, {}
    for _ in range(2):
        rank, (finals[rank], *drift[rank]) = queue.get()
    out = capfd.readouterr().out
    seconds = time.perf_counter() - start
    one = _one_process(tmp_path / "one", steps, micro_batch=4)  # the same 2 micro-batches of 4, one after the other
    two = _losses(tmp_path / "two")
    assert len(two) == steps and two == pytest.approx(_losses(tmp_path / "one"), rel=1e-5, abs=1e-7)
    saved = load_checkpoint(tmp_path / "two")
    for key, value in one.state_dict().items():
        assert torch.allclose(saved.model[key], value, atol=1e-6), key
        assert (finals[0][key] == finals[1][key]).all(), key  # gradients all-reduced: the ranks agree
    assert out.count(f"world size 2 (gloo, {engine}), global batch 8 = 2 process(es) x 1 micro-batch(es) x 4") == 1
    assert drift[0] == [[], []] and drift[1] == [[], ["net.0.bias"] if engine == "ddp" else []]
    assert saved.state["metrics"]["val_loss"] > 0 and "noise_std" in saved.state["metrics"]
    assert (tmp_path / f"two/checkpoints/step_{steps:06d}/config.yaml").read_text().count("world_size: 2") == 1
    # the micro-batch is the unit: one whole batch of 8 at once draws other noise, so it differs
    _one_process(tmp_path / "whole", steps)
    assert _losses(tmp_path / "whole") != pytest.approx(two, rel=1e-5)
    with capfd.disabled():
        print(f"\n2 gloo processes ({engine}), {steps} steps: {seconds:.1f} s (spawn included)")


def test_two_gloo_processes_equal_one_process_accumulating(tmp_path, capfd):
    _two_processes_equal_one_accumulating(tmp_path, capfd, steps=6)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ddp", "fsdp"])
def test_two_gloo_processes_equal_one_process_accumulating_20_steps(tmp_path, capfd, engine):
    _two_processes_equal_one_accumulating(tmp_path, capfd, steps=20, engine=engine)


def test_ranks_take_disjoint_slices_of_the_same_global_batches():
    whole = iter(EpochSampler(20, 8, seed=1, start_step=3))
    ranks = [iter(EpochSampler(20, 8, seed=1, start_step=3, rank=r, world_size=2)) for r in range(2)]
    for _ in range(5):
        batch = [next(whole) for _ in range(8)]
        assert [next(ranks[0]) for _ in range(4)] + [next(ranks[1]) for _ in range(4)] == batch


def test_noise_is_a_function_of_seed_step_and_micro_batch():
    draw = lambda *key: torch.randn(4, generator=noise_generator(*key))  # noqa: E731
    assert torch.equal(draw(0, 5, 1), draw(0, 5, 1))
    assert not torch.equal(draw(0, 5, 1), draw(0, 5, 0)) and not torch.equal(draw(0, 5, 1), draw(0, 6, 1))


def test_global_batch_must_split_into_micro_batches():
    assert OptimConfig(batch_size=32).accumulation(4) == (8, 1)
    assert OptimConfig(batch_size=32, micro_batch=4).accumulation(2) == (4, 4)
    with pytest.raises(ConfigError, match="optim.batch_size=30 .* 4 process.* of 7"):
        OptimConfig(batch_size=30).accumulation(4)
    with pytest.raises(ConfigError, match="optim.distributed"):
        OptimConfig(distributed="horovod").check()


def test_single_process_without_launcher_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(distributed, "_current", None)
    ctx = distributed.setup()
    assert (ctx.world_size, ctx.is_main, ctx.active) == (1, True, False)
    assert not torch.distributed.is_initialized()
    value = torch.tensor([2.0])
    assert distributed.mean(value) is value


def test_half_set_launcher_environment_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(distributed, "_current", None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(Exception, match="MASTER_ADDR.* torchrun or accelerate launch"):
        distributed.setup()
    monkeypatch.setattr(distributed, "_current", None)


def test_cpu_processes_on_a_gpu_machine_use_gloo(monkeypatch):
    """A run on the CPU joins with gloo even where CUDA is (seen on a 1-GPU machine: two CPU processes
    chose nccl and asked for GPU 1); a run on the GPU joins with nccl."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda")) == "nccl"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert distributed.backend_for(torch.device("cuda")) == "gloo"


def test_more_gpu_processes_than_gpus_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(distributed, "_current", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    for k, v in dict(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="1").items():
        monkeypatch.setenv(k, v)
    with pytest.raises(WamError, match="LOCAL_RANK=1 but this machine has 1 GPU.*--device=cpu"):
        distributed.setup(torch.device("cuda"))
    monkeypatch.setattr(distributed, "_current", None)


SCRIPT = textwrap.dedent("""
    import os, sys, signal, torch
    sys.path.insert(0, {root!r})
    from tests.test_trainer import Denoiser, Points, collate
    from wam.trainer import OptimConfig, train

    class Killed(Denoiser):  # rank 1 dies (kill -9) in its 13th step, after the step-10 checkpoint
        def loss(self, batch, generator=None):
            if os.environ.get("KILL") and os.environ["RANK"] == "1" and self.calls == 12:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().loss(batch, generator)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = OptimConfig(steps=20, batch_size=8, lr=1e-2, warmup=3, log_every=1, ckpt_every=5, precision="fp32",
                      distributed=sys.argv[2])
    train(Killed(), Points(), collate, cfg, sys.argv[1], "toy", cfg, progress=False)
""")


def _torchrun(script: Path, run_dir: Path, kill: bool, engine: str = "ddp") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"KILL": "1"} if kill else {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           str(script), str(run_dir), engine]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ddp", "fsdp"])
def test_rank_killed_minus_9_then_rerun_resumes_from_last_checkpoint(tmp_path, engine):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(Path(__file__).parents[2])))
    start = time.perf_counter()
    killed = _torchrun(script, tmp_path / "run", kill=True, engine=engine)
    assert killed.returncode != 0 and "SIGKILL" in killed.stderr + killed.stdout
    assert load_checkpoint(tmp_path / "run").state["step"] == 10
    resumed = _torchrun(script, tmp_path / "run", kill=False, engine=engine)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = _torchrun(script, tmp_path / "straight", kill=False, engine=engine)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a, b = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "straight")
    assert a.state["step"] == b.state["step"] == 20
    for key, value in b.model.items():
        assert torch.allclose(a.model[key], value, atol=1e-6), key  # (ddp: equal to the bit)
    steps = [int(r["step"]) for r in read_log(tmp_path / "run/log.csv")]
    assert steps == list(range(1, 21))  # the steps after 10 logged once, by the resumed run
    print(f"kill -9 + resume under torchrun ({engine}): {time.perf_counter() - start:.1f} s for 3 launches")


TINY_CLI = {  # a 2-layer model on 32 px frames, 20 steps, logged every step
    "pretrain": ["--model.backbone.depth=2", "--model.backbone.width=64", "--model.future=2,4",
                 "--model.sample_steps=2"],
    "train": ["--paradigm=joint", "--policy.backbone.depth=2", "--policy.backbone.width=64", "--policy.future=2,4",
              "--policy.chunk=3", "--policy.sample_steps=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("verb", ["pretrain", "train"])
def test_wam_verb_under_torchrun_equals_one_process(tiny_dataset, tmp_path, verb):
    """`torchrun -m wam <verb>` unchanged: rank 0 prepares the data and the tokenizer first, the curve
    is the one of a single process accumulating the same micro-batches."""
    common = [verb, f"--data.path={tiny_dataset[0]}", "--data.image_size=32", "--tokenizer.steps=10",
              "--tokenizer.batch_size=16", "--tokenizer.base_channels=8", "--tokenizer.latent_channels=4",
              "--optim.steps=20", "--optim.batch_size=8", "--optim.log_every=1", "--optim.val_every=10",
              "--optim.ckpt_every=10", "--optim.precision=fp32", "--text_encoder=hash", *TINY_CLI[verb]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda *cmd: subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    two = run(sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
              "-m", "wam", *common, f"--out={tmp_path / 'two'}")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "world size 2 (gloo, ddp)" in two.stdout and two.stdout.count("done:") == 1
    one = run(sys.executable, "-m", "wam", *common, "--optim.micro_batch=4", f"--out={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr[-3000:]
    curves = [[float(r["loss"]) for r in read_log(tmp_path / d / "log.csv")] for d in ("one", "two")]
    assert len(curves[1]) == 20 and curves[1] == pytest.approx(curves[0], rel=1e-5)
    assert "world_size: 2" in (tmp_path / "two/config.yaml").read_text()


def test_fsdp_groups_are_the_outermost_blocks_of_each_stack():
    inner = lambda: torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])  # noqa: E731
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(2, 2)) for _ in range(3)])
    for block in model.blocks:
        block.experts = inner()  # a stack inside a block: its parent block is the group
    model.heads = inner()
    groups = distributed._outer_blocks(model)
    assert groups == [*model.blocks, *model.heads]
