"""`wam train` end to end on tiny configs: every registered (paradigm, integration) variant from a pretrain
run, and from scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import IMAGE_KEY, write_dataset
from tests.paradigms.test_contract import batch as contract_batch
from tests.paradigms.test_contract import perturbed, tiny
from tests.test_pretrain import TINY
from wam.cli import main
from wam.config import apply_overrides
from wam.errors import ConfigError
from wam.paradigms import VARIANTS
from wam.paradigms.settings import LatentActionsConfig
from wam.pretrain import PretrainConfig, pretrain
from wam.train import TrainConfig, load_policy, train_policy

POLICY = {"data.image_size": 32, "tokenizer.steps": 10, "tokenizer.batch_size": 16, "tokenizer.base_channels": 8,
          "tokenizer.latent_channels": 4, "policy.backbone.depth": 2, "policy.backbone.width": 64,
          "policy.future": (2, 4), "policy.chunk": 3, "policy.sample_steps": 2, "optim.steps": 4,
          "optim.batch_size": 4, "optim.val_every": 2, "optim.ckpt_every": 2, "optim.log_every": 2,
          "text_encoder": "hash"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_dataset(root / "data", lengths=(20, 22, 24, 26))
    cfg = apply_overrides(PretrainConfig(), {**TINY, "data.path": str(root / "data"), "out": str(root / "wm")})
    pretrain(cfg, progress=False)
    return root


@pytest.fixture(scope="module")
def code_wm(pretrained):
    """`wam pretrain --latent_actions=true` on the same data (the tokenizer of `pretrained` reused): a world model
    with a LAM and a code head, what latent-action policies start from."""
    from tests.test_pretrain import LAPA

    cfg = apply_overrides(PretrainConfig(), {**TINY, **LAPA, "data.check": "cheap", "data.path": str(pretrained / "data"),
                                             "tokenizer.path": str(pretrained / "wm" / "tokenizer"),
                                             "out": str(pretrained / "code_wm")})
    pretrain(cfg, progress=False)
    return pretrained / "code_wm"


@pytest.mark.parametrize("paradigm,integration", list(VARIANTS))
def test_every_variant_trains_from_the_world_model(pretrained, code_wm, tmp_path, paradigm, integration):
    wm_run = code_wm if integration == "latent_actions" else pretrained / "wm"  # LAPA: codes learned in pretraining
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": paradigm, "policy.integration": integration,
                                          "init": str(wm_run), "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"]) and "val_loss" in metrics
    if paradigm == "representation" and integration == "tokens":  # held-out loss by term, summing to val_loss
        w = cfg.policy
        assert metrics["val_loss"] == pytest.approx(w.action_weight * metrics["val_action_loss"]
                                                    + w.video_weight * metrics["val_video_loss"], rel=1e-4)
    policy, saved = load_policy(tmp_path / "p")
    assert saved.paradigm == paradigm and saved.policy.integration == integration
    assert saved.policy.backbone.width == 64
    from wam.imagination import load_world_model

    wm = load_world_model(wm_run)[0].state_dict()
    raw, _ = load_policy(tmp_path / "p", use_ema=False)
    assert_started_from(raw.paradigm.parts.state_dict(), wm, tiny(paradigm, integration=integration).parts.state_dict())
    obs = {IMAGE_KEY: np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(4, np.float32),
           "task": "push the puck"}
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    again, _ = load_policy(tmp_path / "p")
    assert np.array_equal(policy.predict_action_chunk(obs, g()), again.predict_action_chunk(obs, g()))


def test_action_only_from_scratch_via_cli(pretrained, tmp_path):
    argv = ["train", "--paradigm=action_only", f"--data.path={pretrained / 'data'}", f"--out={tmp_path / 'b'}"]
    argv += [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in POLICY.items()]
    assert main(argv) == 0
    assert (tmp_path / "b/tokenizer/tokenizer.json").exists()  # trained its own tokenizer


def test_a_reused_tokenizer_defines_the_saved_config(pretrained, tmp_path):
    """`tokenizer.path` with fields unlike the config's defaults: the run's config must describe the
    tokenizer used, or the checkpoint cannot be loaded again (a real bug: base_channels 16 vs 32)."""
    wm_tokenizer = pretrained / "wm" / "tokenizer"
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "tokenizer.base_channels": 32,
                                          "tokenizer.path": str(wm_tokenizer), "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    policy, saved = load_policy(tmp_path / "p")
    assert saved.tokenizer.base_channels == TINY["tokenizer.base_channels"] != 32


def test_a_run_folder_of_another_paradigm_is_refused(pretrained, tmp_path):
    base = {**POLICY, "init": str(pretrained / "wm"), "data.path": str(pretrained / "data"), "out": str(tmp_path / "p")}
    train_policy(apply_overrides(TrainConfig(), {**base, "paradigm": "joint"}), progress=False)
    with pytest.raises(ConfigError, match="holds a 'joint'"):
        train_policy(apply_overrides(TrainConfig(), {**base, "paradigm": "representation"}), progress=False)


def test_a_run_resumed_under_other_settings_says_which(pretrained, tmp_path, capsys):
    """Resuming with more steps is fine, but the changed settings are said; so are keys the saved config predates
    (a run started before `labels.*` existed would now take today's labeller)."""
    base = {**POLICY, "paradigm": "action_only", "init": str(pretrained / "wm"), "data.path": str(pretrained / "data"),
            "out": str(tmp_path / "p")}
    train_policy(apply_overrides(TrainConfig(), base), progress=False)
    assert "settings changed" not in capsys.readouterr().err
    train_policy(apply_overrides(TrainConfig(), base), progress=False)  # the same settings: nothing to say
    assert "settings changed" not in capsys.readouterr().err
    saved = tmp_path / "p" / "config.yaml"
    tree = yaml.safe_load(saved.read_text())
    del tree["labels"]  # as written before `labels.*` existed
    saved.write_text(yaml.safe_dump(tree, sort_keys=False))
    train_policy(apply_overrides(TrainConfig(), {**base, "optim.steps": 6}), progress=False)
    err = capsys.readouterr().err
    assert "optim.steps: 4 -> 6" in err and "taken as labels.ahead=8," in err and "labels.behind=4" in err
    assert "text_encoder" not in err and "paradigm" not in err and "out=" not in err


def test_bad_train_config(pretrained, tmp_path, capsys):
    with pytest.raises(ConfigError, match="choose one of"):
        apply_overrides(TrainConfig(), {"paradigm": "magic"}).check()
    cfg = apply_overrides(TrainConfig(), {**POLICY, "data.image_size": 48, "init": str(pretrained / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="pretrained on 32 px"):
        train_policy(cfg, progress=False)


# -- tasks learned from video alone (data.video_only_tasks) --------------------------------------
MW_TASKS = {"tasks": ("reach the goal", "push the puck"), "env_tasks": ("reach-v3", "push-v3")}


def _grads(p) -> list[torch.Tensor]:
    return [q.grad for q in p.parameters() if q.requires_grad and q.grad is not None]


@pytest.mark.parametrize("paradigm,integration", list(VARIANTS))
def test_video_only_samples_give_no_action_gradient(paradigm, integration):
    """A batch whose actions are all missing (zeroed, padded) trains nothing through any action loss."""
    silent = {"video_weight": 0.0, "latent_actions": LatentActionsConfig(code_weight=0.0)}
    data = {**contract_batch(), "action_is_pad": torch.ones(4, 3, dtype=torch.bool)}
    data["action"] = torch.zeros_like(data["action"])
    p = perturbed(tiny(paradigm, integration=integration, **silent), 0.05)
    loss, metrics = p.loss(data, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert metrics["action_loss"].item() == 0 and all(g.abs().max() == 0 for g in _grads(p))
    if VARIANTS[(paradigm, integration)].video:  # the same batch still trains the video model
        p = perturbed(tiny(paradigm, integration=integration), 0.05)
        p.loss(data, generator=torch.Generator().manual_seed(0))[0].backward()
        assert any(g.abs().max() > 0 for g in _grads(p))


def test_video_only_windows_hide_actions(tmp_path):
    from wam.data.lerobot_format import LeRobotDataset
    from wam.data.windows import WindowDataset, WindowSpec

    write_dataset(tmp_path / "d", lengths=(20, 22, 24), **MW_TASKS)
    ds = LeRobotDataset(tmp_path / "d")
    windows = WindowDataset(ds, WindowSpec(action=(0, 1, 2)), actionless=[1])
    plain = WindowDataset(ds, WindowSpec(action=(0, 1, 2)))
    for i in range(len(windows)):
        s, ref = windows[i], plain[i]
        if s["episode_index"] == 1:
            assert s["action_is_pad"].all() and (s["action"] == 0).all()
        else:
            assert torch.equal(s["action"], ref["action"]) and torch.equal(s["action_is_pad"], ref["action_is_pad"])
            assert torch.equal(s["obs.image"], ref["obs.image"])


def test_train_with_video_only_tasks(pretrained, tmp_path):
    import json

    from wam.data.lerobot_format import LeRobotDataset
    from wam.evaluate import EvalConfig, _tasks_to_run

    write_dataset(tmp_path / "d", lengths=(20, 22, 24, 26), **MW_TASKS)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "data.path": str(tmp_path / "d"),
                                          "data.video_only_tasks": "push", "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"])
    tasks = json.loads((tmp_path / "p/tasks.json").read_text())
    assert tasks["video_only_tasks"] == ["push-v3"] and tasks["env_tasks"] == ["push-v3", "reach-v3"]
    # the action normalisation comes from the labelled task's TRAINING episodes (reach: 0; 2 is held out)
    policy, _ = load_policy(tmp_path / "p")
    reach = LeRobotDataset(tmp_path / "d").read_columns(["action"], [0])["action"]
    assert np.allclose(policy.normalizer.action_min.numpy(), reach.min(0))
    assert np.allclose(policy.normalizer.action_span.numpy(), reach.max(0) - reach.min(0), atol=1e-6)
    # tasks learned from video are trained tasks: `wam eval` does not refuse them
    assert _tasks_to_run(EvalConfig(policy=str(tmp_path / "p"), tasks="push-v3")) == ["push-v3"]


def test_bad_video_only_tasks(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20, 22), **MW_TASKS)
    base = {**POLICY, "paradigm": "joint", "data.path": str(tmp_path / "d"), "out": str(tmp_path / "p")}
    with pytest.raises(ConfigError, match="does not hold"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "drawer-open"}), progress=False)
    with pytest.raises(ConfigError, match="every task"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "reach,push"}), progress=False)
    with pytest.raises(ConfigError, match="unknown Meta-World task"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "nonsense"}), progress=False)
    with pytest.raises(ConfigError, match="action-conditioned"):
        apply_overrides(PretrainConfig(), {"data.video_only_tasks": "push", "model.action_chunk": 4}).check()


def test_training_is_reproducible_for_a_seed(pretrained, tmp_path):
    """Two runs of the same config and seed on one device give the same weights, whatever the global RNG
    was before (model initialisation included)."""
    from wam.checkpoint import load_checkpoint

    def weights(out: str, seed: int) -> dict:
        torch.manual_seed(len(out))  # the global RNG state before the run differs between runs
        cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "init": str(pretrained / "wm"),
                                              "data.path": str(pretrained / "data"), "optim.seed": seed,
                                              "optim.steps": 2, "out": str(tmp_path / out)})
        train_policy(cfg, progress=False)
        return load_checkpoint(tmp_path / out).model

    a, b = weights("a", 0), weights("bb", 0)  # before seed_run: different initial weights, so different runs
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
# -- issue 11: --init reports and refuses, statistics from training episodes, execution settings ----------
def test_init_loads_the_world_model_and_says_so(pretrained, tmp_path, capsys):
    """After a few small steps from `--init`, the policy's backbone is still next to the world model's
    weights (a policy that silently skipped the load would sit at a fresh init, far from them)."""
    from wam.imagination import load_world_model

    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "init": str(pretrained / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    report = [line for line in capsys.readouterr().out.splitlines() if line.startswith("--init")]
    assert len(report) == 1 and "backbone" in report[0] and "fresh: action_io, state_in" in report[0], report
    wm, _ = load_world_model(pretrained / "wm")
    policy, _ = load_policy(tmp_path / "p", use_ema=False)
    ours = policy.paradigm.parts.state_dict()
    fresh = tiny("joint").parts.state_dict()  # the same shapes at a fresh init
    assert_started_from(ours, wm.state_dict(), fresh)


def assert_started_from(ours: dict, wm: dict, fresh: dict) -> None:
    """After a few small steps, the policy's backbone is still next to the world model's weights, on the
    tensors where a fresh init sits well away from them (adaLN-Zero's zeros are left out by this)."""
    far = lambda a, b: float((a.float() - b.float()).abs().max())  # noqa: E731
    telling = [k for k, v in wm.items() if k.startswith("backbone.") and far(fresh[k], v) > 0.2]
    assert len(telling) >= 8
    assert all(far(ours[k], wm[k]) < 0.05 for k in telling)


def test_init_of_a_mot_policy_from_a_monolithic_world_model(pretrained, tmp_path):
    """`--policy.backbone.mot=true` over a monolithic world model (Fast-WAM's recipe): every expert starts from the
    shared weights, the run trains, and its checkpoint reloads as MoT."""
    from wam.imagination import load_world_model

    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "representation", "init": str(pretrained / "wm"),
                                          "policy.backbone.mot": True, "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    policy, saved = load_policy(tmp_path / "p", use_ema=False)
    assert saved.policy.backbone.mot and policy.paradigm.parts.backbone.keys == ["action", "text", "video"]
    wm, _ = load_world_model(pretrained / "wm")
    ours, theirs = policy.paradigm.parts.state_dict(), wm.state_dict()
    fresh = tiny("representation", True).parts.state_dict()
    for expert in ("action", "video"):
        named = {k.replace(".shared.", f".{expert}."): v for k, v in theirs.items()}
        assert_started_from(ours, {k: v for k, v in named.items() if k in ours}, fresh)


def test_a_policy_over_a_mot_world_model_says_it_is_mot(pretrained, tmp_path, capsys):
    """`--policy.backbone.mot=false` (the default) over a MoT world model cannot be refused (it is the default), so the
    run says the world model's MoT wins."""
    wm = apply_overrides(PretrainConfig(), {**TINY, "model.backbone.mot": True, "data.path": str(pretrained / "data"),
                                            "tokenizer.path": str(pretrained / "wm" / "tokenizer"),
                                            "out": str(tmp_path / "wm")})
    pretrain(wm, progress=False)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "representation", "init": str(tmp_path / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    assert "policy.backbone.mot=true: the world model of --init is a Mixture-of-Transformers" in capsys.readouterr().out
    assert load_policy(tmp_path / "p")[1].policy.backbone.mot


@pytest.mark.parametrize("flag,value", [("policy.backbone.width", 128), ("policy.patch", 4)])
def test_init_refuses_a_backbone_option_that_contradicts_the_world_model(pretrained, tmp_path, capsys, flag, value):
    argv = ["train", "--paradigm=joint", f"--init={pretrained / 'wm'}", f"--data.path={pretrained / 'data'}",
            f"--out={tmp_path / 'p'}", f"--{flag}={value}"]
    argv += [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in POLICY.items() if k != flag]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "the world model has" in err[0], err


def test_init_refuses_a_world_model_that_lacks_a_backbone_tensor(pretrained, tmp_path, capsys, monkeypatch):
    """Every tensor of the policy's world-model parts must come from `--init`: one missing is one line, exit 2
    (not a policy that silently keeps a fresh tensor)."""
    import wam.train

    real = wam.train.load_world_model

    def lacking(path):
        wm, cfg = real(path)
        state = wm.state_dict()
        wm.state_dict = lambda: {k: v for k, v in state.items() if k != "backbone.blocks.1.experts.shared.qkv.weight"}
        return wm, cfg

    monkeypatch.setattr(wam.train, "load_world_model", lacking)
    argv = ["train", "--paradigm=joint", f"--init={pretrained / 'wm'}", f"--data.path={pretrained / 'data'}",
            f"--out={tmp_path / 'p'}"]
    argv += [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in POLICY.items()]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks backbone.blocks.1.experts.shared.qkv.weight" in err[0], err


def test_statistics_come_from_the_training_episodes_only(pretrained, tmp_path):
    from wam.data.lerobot_format import LeRobotDataset

    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p"), "data.val_fraction": 0.3})
    train_policy(cfg, progress=False)
    import json
    split = json.loads((tmp_path / "p/split.json").read_text())
    assert split["val"]  # something is held out
    ds = LeRobotDataset(pretrained / "data")
    cols = ds.read_columns(["observation.state", "action"], split["train"])
    policy, _ = load_policy(tmp_path / "p")
    assert np.allclose(policy.normalizer.state_mean.numpy(), cols["observation.state"].mean(0), atol=1e-5)
    assert np.allclose(policy.normalizer.action_min.numpy(), cols["action"].min(0))
    every = ds.read_columns(["observation.state"], split["train"] + split["val"])["observation.state"]
    assert not np.allclose(policy.normalizer.state_mean.numpy(), every.mean(0), atol=1e-5)


def test_execution_settings_reach_the_policy_at_train_and_eval_time(pretrained, tmp_path):
    from wam.evaluate import EvalConfig, load_for_eval

    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p"), "policy.n_action_steps": 1})
    train_policy(cfg, progress=False)
    run = str(tmp_path / "p")
    policy, _ = load_for_eval(EvalConfig(policy=run))
    assert (policy.n_action_steps, policy.ensemble) == (1, None)  # as trained
    policy, _ = load_for_eval(EvalConfig(policy=run, n_action_steps=2, ensemble=0.3))
    assert (policy.n_action_steps, policy.ensemble) == (2, 0.3)
    with pytest.raises(ConfigError, match="n_action_steps must be in 1..3"):
        load_for_eval(EvalConfig(policy=run, n_action_steps=9))
    with pytest.raises(ConfigError, match="policy.ensemble"):
        apply_overrides(TrainConfig(), {"policy.ensemble": -0.5}).check()
    with pytest.raises(ConfigError, match="policy.n_action_steps"):
        apply_overrides(TrainConfig(), {"policy.chunk": 4, "policy.n_action_steps": 5}).check()


def test_latent_frame_with_state_frames_trains_and_acts(pretrained, tmp_path):
    """Cosmos Policy's state: the future proprio comes from the windows, normalised like the current one."""
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "policy.integration": "latent_frame",
                                          "policy.latent_frame.state_frames": True, "init": str(pretrained / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"]) and "state_loss" in metrics
    policy, saved = load_policy(tmp_path / "p")
    assert saved.policy.latent_frame.state_frames and policy.paradigm.parts.state_in is None
    obs = {IMAGE_KEY: np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(4, np.float32),
           "task": "push the puck"}
    assert policy.predict_action_chunk(obs, torch.Generator().manual_seed(0)).shape == (3, 4)


def test_latent_frame_with_a_value_frame_trains_and_acts_best_of_n(pretrained, tmp_path):
    """Cosmos Policy's value: the windows carry each episode's length to the value target, `wam eval
    --value_candidates` switches best-of-N on, and a policy without a value frame refuses it."""
    from wam.evaluate import EvalConfig, load_for_eval

    flags = {**POLICY, "paradigm": "joint", "policy.integration": "latent_frame", "init": str(pretrained / "wm"),
             "data.path": str(pretrained / "data")}
    cfg = apply_overrides(TrainConfig(), {**flags, "policy.latent_frame.value_frame": True, "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"]) and metrics["value_loss"] > 0
    policy, saved = load_for_eval(EvalConfig(policy=str(tmp_path / "p"), value_candidates=3))
    assert saved.policy.latent_frame.value_frame and policy.paradigm.cfg.latent_frame.value_candidates == 3
    obs = {IMAGE_KEY: np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(4, np.float32),
           "task": "push the puck"}
    assert policy.predict_action_chunk(obs, torch.Generator().manual_seed(0)).shape == (3, 4)
    assert policy.paradigm.last_value.shape == (1,) and torch.isfinite(policy.paradigm.last_value).all()
    train_policy(apply_overrides(TrainConfig(), {**flags, "optim.steps": 2, "out": str(tmp_path / "q")}), progress=False)
    with pytest.raises(ConfigError, match="--value_candidates=3: .*value_frame=true"):
        load_for_eval(EvalConfig(policy=str(tmp_path / "q"), value_candidates=3))


# -- issue 11: latent actions as LAPA (codes from `wam pretrain --latent_actions=true`) ------------------
@pytest.mark.parametrize("tune", [False, True])
def test_latent_actions_fine_tune_only_the_decoder_from_the_pretrained_codes(pretrained, code_wm, tmp_path, capsys,
                                                                            tune):
    """By default only the action decoder moves: the LAM, the code head and every backbone tensor are still the
    world model's after training; `--policy.latent_actions.tune_backbone=true` moves the backbone too, never the LAM."""
    from wam.checkpoint import load_checkpoint
    from wam.imagination import load_world_model

    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "policy.integration": "latent_actions",
                                          "init": str(code_wm), "data.path": str(pretrained / "data"),
                                          "policy.latent_actions.tune_backbone": tune, "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("latent actions: trains")]
    assert len(said) == 1 and said[0].startswith("latent actions: trains " + ("code_io, decoder, parts." if tune
                                                                              else "decoder ("))
    wm = {k if k.startswith(("lam.", "code_io.")) else f"parts.{k}": v
          for k, v in load_world_model(code_wm)[0].state_dict().items()}
    policy, _ = load_policy(tmp_path / "p", use_ema=False)
    ours = policy.paradigm.state_dict()
    moved = {k.split(".")[0] if not k.startswith("parts.") else k.split(".")[1] for k, v in wm.items()
             if not torch.equal(ours[k], v)}
    assert moved == ({"backbone", "code_io", "future_io", "obs_in", "text"} if tune else set()), moved
    steps = sorted((tmp_path / "p/checkpoints").glob("step_*"))
    first, last = (load_checkpoint(s) for s in steps[-2:])  # steps 2 and 4: the decoder did train
    assert not torch.equal(first.model["paradigm.decoder.net.0.weight"], last.model["paradigm.decoder.net.0.weight"])
    trainable = {k.split(".")[1] if k.split(".")[1] != "parts" else k.split(".")[2] for k in last.ema}
    assert trainable == ({"backbone", "code_io", "decoder", "future_io", "obs_in", "text"} if tune else {"decoder"})
