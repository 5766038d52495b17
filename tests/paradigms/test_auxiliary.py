"""`policy.aux`: every variant's features of the current frame regress named positions, a training signal only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FEATURES, IMAGE_KEY, moving_square
from tests.paradigms.test_contract import batch, perturbed, tiny
from tests.test_train import POLICY
from wam.config import apply_overrides
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError, DatasetError
from wam.paradigms import VARIANTS
from wam.paradigms.auxiliary import AUX_KEY, AuxConfig, aux_r2, auxiliary_loss, perceive
from wam.train import TrainConfig, load_policy, train_policy

AUX = AuxConfig(targets="object,goal")


def aux_batch(b: int = 4, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed + 7)
    return {**batch(b, seed), "aux.target": torch.randn(b, 39, generator=g)}


@pytest.mark.parametrize("name,integration", list(VARIANTS))
def test_every_variant_trains_the_head_and_acts_without_it(name, integration):
    p = perturbed(tiny(name, integration=integration, aux=AUX), 0.05)
    x = aux_batch()
    loss, metrics = p.loss(x, torch.Generator().manual_seed(0))
    total, metrics = auxiliary_loss(p.parts, x, loss, metrics)
    assert torch.isfinite(metrics["aux_loss"]) and total.item() == pytest.approx(loss.item() + metrics["aux_loss"].item(),
                                                                                  rel=1e-5)
    head, features = p.parts.aux_head, p.parts.obs_in.proj_in.weight
    both = torch.autograd.grad(total, [head.out.weight, features], retain_graph=True)
    alone = torch.autograd.grad(loss, features)[0]
    assert both[0].abs().sum() > 0
    assert not torch.allclose(both[1], alone)  # the head's error reaches the features it reads, not only the head
    p.eval()
    acted = p.act(x, torch.Generator().manual_seed(3))
    with torch.no_grad():
        for q in head.parameters():
            q.add_(torch.randn_like(q))
    p.reset()
    assert torch.equal(acted, p.act(x, torch.Generator().manual_seed(3)))  # acting never reads the head


def test_the_obs_tokens_are_the_same_in_every_pass():
    """The head may read any pass's obs tokens: the obs group is clean and sees only clean groups."""
    p = perturbed(tiny("joint", aux=AUX), 0.05)
    x = aux_batch()
    seen = []
    for seed in (0, 1):
        p.loss(x, torch.Generator().manual_seed(seed))
        seen.append(p.parts.aux_features.detach().clone())
    assert torch.allclose(*seen, atol=1e-5)
    p.eval()
    assert torch.allclose(perceive(p.parts, x), p.parts.aux_head(seen[0]), atol=1e-5)  # what eval-offline reads


def test_aux_r2_per_target_and_task():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(40, 6))
    true[20:, 3:] = 1.5  # the second target fixed in task b: no spread to explain
    tasks = np.array(["a"] * 20 + ["b"] * 20)
    pred = true.copy()
    pred[:, :3] = true[:, :3] + rng.normal(size=(40, 3)) * np.sqrt(0.5) * true[:, :3].std(0)
    r2 = aux_r2(pred, true, tasks, ["object", "goal"])
    assert r2["goal"]["all"] == 1.0 and r2["goal"]["a"] == 1.0 and r2["goal"]["b"] is None
    assert 0.3 < r2["object"]["all"] < 0.7
    mean = np.broadcast_to(true.mean(0), true.shape)
    assert aux_r2(mean, true, tasks, ["object", "goal"])["object"]["all"] == pytest.approx(0.0, abs=1e-9)


def test_the_head_learns_a_position_from_the_frame():
    """Targets that are a function of the current frame's latents are learned (a fixed batch, memorised)."""
    p = perturbed(tiny("action_only", aux=AuxConfig(targets="object")), 0.05)
    x = aux_batch(8)
    x["aux.target"][:, 4:7] = x["obs.latent"][:, -1].mean((2, 3))[:, :3] * 3  # (B, 3) from the current frame
    opt = torch.optim.Adam(p.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        loss, metrics = auxiliary_loss(p.parts, x, *p.loss(x, torch.Generator().manual_seed(step)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["aux_loss"].item())
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.parametrize("targets,weight,what", [("object,lid", 1.0, "comma list of hand, object, goal"),
                                                 ("goal,goal", 1.0, "twice"), ("goal", 0.0, "weight")])
def test_bad_targets_are_refused_with_a_line(targets, weight, what):
    with pytest.raises(ConfigError, match=what):
        tiny("action_only", aux=AuxConfig(targets=targets, weight=weight))


def write_positions(root: Path, lengths=(20, 24, 22, 26)) -> None:
    """The conftest's moving-square data plus a 39-dim environment state whose `object` x is the square's."""
    features = {**FEATURES, AUX_KEY: {"dtype": "float32", "shape": [39], "names": None}}
    writer = LeRobotWriter(root, fps=10, features=features)
    for e, n in enumerate(lengths):
        rng = np.random.default_rng(e)
        env = rng.normal(size=(n, 39)).astype(np.float32) * 0.01
        env[:, 4] = (3 * np.arange(n)) % 24 / 24.0  # the square's column (moving_square)
        data = {"observation.state": rng.normal(size=(n, 4)).astype(np.float32),
                "action": rng.uniform(-1, 1, size=(n, 4)).astype(np.float32), AUX_KEY: env}
        writer.add_episode("push the square", data, {IMAGE_KEY: moving_square(n, seed=e)},
                           extras={"env_task": "task0", "seed": e})


def test_train_with_aux_targets_end_to_end(tmp_path):
    write_positions(tmp_path / "data")
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "representation", "policy.aux.targets": "object",
                                          "data.path": str(tmp_path / "data"), "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["aux_loss"]) and np.isfinite(metrics["val_aux_loss"])
    policy, saved = load_policy(tmp_path / "p")
    assert saved.policy.aux.targets == "object"
    head = policy.paradigm.parts.aux_head
    assert torch.equal(head.columns, torch.arange(4, 7))
    assert 0.2 < head.target_mean[0].item() < 0.8  # the training episodes' mean column, saved with the weights
    obs = {IMAGE_KEY: moving_square(1)[0], "observation.state": np.zeros(4, np.float32), "task": "push the square"}
    assert policy.select_action(obs, generator=torch.Generator().manual_seed(0)).shape == (4,)
    from wam.offline_eval import OfflineEvalConfig, offline_eval

    result = offline_eval(OfflineEvalConfig(policy=str(tmp_path / "p"), windows_per_episode=8), progress=False)
    assert set(result["aux_r2"]["object"]) == {"all", "task0"} and np.isfinite(result["aux_r2"]["object"]["all"])


def test_aux_targets_need_the_environment_state_and_a_wam(tmp_path):
    from tests.conftest import write_dataset

    write_dataset(tmp_path / "data", lengths=(20, 22, 24, 26))
    base = {**POLICY, "policy.aux.targets": "goal", "data.path": str(tmp_path / "data")}
    cfg = apply_overrides(TrainConfig(), {**base, "paradigm": "action_only", "out": str(tmp_path / "a")})
    with pytest.raises(DatasetError, match="observation.environment_state"):
        train_policy(cfg, progress=False)
    cfg = apply_overrides(TrainConfig(), {**base, "paradigm": "conv_reference", "out": str(tmp_path / "b")})
    with pytest.raises(ConfigError, match="outside reference"):
        train_policy(cfg, progress=False)
