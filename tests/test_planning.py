"""`wam plan`: a tiny action-conditioned world model (and a proposal policy) -> a planning policy folder
that loads like a trained policy and acts reproducibly (bad input: tests/test_bad_inputs.py, rows "plan: ...")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY, write_dataset
from tests.test_pretrain import tiny_config
from tests.test_train import POLICY
from wam.cli import main
from wam.config import apply_overrides
from wam.planning import load_planner
from wam.pretrain import pretrain
from wam.train import TrainConfig, train_policy


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A dataset of two Meta-World-named tasks, a world model conditioned on 3 actions, an action-only policy."""
    root = tmp_path_factory.mktemp("plan")
    write_dataset(root / "d", lengths=(20, 22, 24, 26), env_tasks=("reach-v3", "push-v3"))
    pretrain(tiny_config(root / "d", root / "wm", **{"model.action_chunk": 3}), progress=False)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(root / "d"),
                                          "out": str(root / "ao"), "optim.steps": 2})
    train_policy(cfg, progress=False)
    return root


def obs(root, frame: int = 0) -> dict:
    from wam.data.frames import cached_frames
    from wam.data.lerobot_format import LeRobotDataset

    ds = LeRobotDataset(root / "d")
    image = cached_frames(ds, IMAGE_KEY, image_size=32, progress=False).get(np.array([frame]))[0]
    return {IMAGE_KEY: image, "observation.state": np.zeros(4, np.float32), "task": ds.tasks[0]}


@pytest.mark.parametrize("proposal", [False, True])
def test_plan_folder_acts_reproducibly(runs, proposal, capsys):
    out = runs / f"plan_{proposal}"
    args = ["plan", f"--world_model={runs / 'wm'}", f"--out={out}", "--policy.candidates=4"]
    assert main(args + ([f"--proposal={runs / 'ao'}"] if proposal else [])) == 0
    assert f"wam eval --policy={out}" in capsys.readouterr().out
    assert json.loads((out / "tasks.json").read_text())["env_tasks"] == ["push-v3", "reach-v3"]
    with np.load(out / "goals.npz") as goals:
        assert goals["first"].shape[0] == 2 and not np.allclose(goals["first"], goals["last"])  # 2 training demos
    policy, cfg = load_planner(out)
    assert cfg.policy.chunk == 3 and cfg.data.source_size == 32 and (policy.paradigm.proposal is not None) == proposal
    chunks = [policy.predict_action_chunk(obs(runs), generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert chunks[0].shape == (3, 4) and np.array_equal(chunks[0], chunks[1])
    assert not np.array_equal(chunks[0], chunks[2])
    policy.record_imagination = True
    policy.predict_action_chunk(obs(runs), generator=torch.Generator().manual_seed(1))
    assert policy.imagined.shape == (2, 32, 32, 3)  # the executed chunk's imagined future, decoded



def test_wam_eval_loads_a_plan_folder_like_a_policy(runs):
    """What `wam eval` does before its rollouts: the tasks from tasks.json, the policy with eval's overrides."""
    from wam.evaluate import EvalConfig, _tasks_to_run, load_for_eval

    out = runs / "plan_eval"
    assert main(["plan", f"--world_model={runs / 'wm'}", f"--out={out}", "--policy.candidates=2"]) == 0
    cfg = EvalConfig(policy=str(out), tasks="reach-v3", n_action_steps=2, sample_steps=1)
    assert _tasks_to_run(cfg) == ["reach-v3"]
    policy, run_cfg = load_for_eval(cfg)
    assert policy.n_action_steps == 2 and policy.paradigm.cfg.sample_steps == 1 and run_cfg.policy.future == (2, 4)
    policy.reset(seed=0, task="reach-v3")
    assert policy.select_action(obs(runs)).shape == (4,) and len(policy._queue) == 1


def test_wam_serve_serves_a_plan_folder_with_the_local_actions(runs):
    """A planner behind `wam serve` answers what the same planner computes in-process (same episode noise)."""
    from wam.planning import load_runnable
    from wam.serve.client import PolicyClient
    from wam.serve.server import PolicyServer, ServeConfig, load_service

    out = runs / "plan_serve"
    assert main(["plan", f"--world_model={runs / 'wm'}", f"--out={out}", "--policy.candidates=2"]) == 0
    service = load_service(ServeConfig(policy=str(out), precision="fp32"))
    assert service.info["tasks"] == ["push-v3", "reach-v3"] and service.info["paradigm"] == "planning"
    server = PolicyServer(service, port=0).start()
    try:
        with PolicyClient(server.address, timeout=30) as client:
            client.reset(seed=3, task="t")
            remote = client.predict_action_chunk(obs(runs))
    finally:
        server.stop()
    local, _ = load_runnable(out)
    local.reset(seed=3, task="t")
    np.testing.assert_allclose(remote, local.predict_action_chunk(obs(runs), generator=local.generator), atol=1e-6)


def test_a_goal_png_is_the_goal_of_every_task(runs):
    from PIL import Image

    frame = obs(runs, frame=10)[IMAGE_KEY]
    Image.fromarray(frame).save(runs / "goal.png")
    out = runs / "plan_goal"
    assert main(["plan", f"--world_model={runs / 'wm'}", f"--out={out}", f"--goal={runs / 'goal.png'}"]) == 0
    policy, _ = load_planner(out)
    expected = policy.paradigm.parts.encode(torch.from_numpy(frame).permute(2, 0, 1)[None, None])[:, 0]
    planner = policy.paradigm
    assert planner.goal_last.shape[0] == 1 and torch.allclose(planner.goal_last, expected)
    text = torch.randn(3, 384)
    assert torch.equal(planner.goal(torch.randn(3, 4, 4, 4), text), expected.expand(3, -1, -1, -1))


def test_settings_taken_from_the_world_model_are_not_overridden_silently(runs, capsys):
    code = main(["plan", f"--world_model={runs / 'wm'}", f"--out={runs / 'p5'}", "--policy.chunk=5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "chunk=5 is taken from the world model, which has 3" in err[0]
