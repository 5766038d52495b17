"""Each paradigm's own config section (wam.paradigms.settings): a bad value is refused with one line naming its
key under the section, each strategy names the sections it reads, and the old flat keys (`policy.feature_noise`,
`policy.plan_every`, `policy.ref_channels`, ...) still load, from flags, a YAML file or an old checkpoint
folder, with one printed note."""

from __future__ import annotations

import fnmatch

import numpy as np
import pytest
import torch
import yaml

import wam.config
from wam.backbones.build import frame_tokenizer
from wam.checkpoint import save_checkpoint, write_manifest
from wam.cli import main
from wam.config import apply_overrides, flat_keys, load_config, parse_config, save_config
from wam.errors import ConfigError
from wam.paradigms import VARIANTS, PolicyModelConfig
from wam.paradigms.settings import HierarchicalConfig, MimicConfig
from wam.pretrain import PretrainConfig
from wam.reference import REFERENCES
from wam.train import KIND, TrainConfig, build_policy, load_policy

# (flags, the key the one-line refusal must name): each section's own check, and the rules across sections
BAD = [({"policy.mimic.feature_noise": "1.0"}, "policy.mimic.feature_noise"),
       ({"policy.mimic.feature_noise": "-0.1"}, "policy.mimic.feature_noise"),
       ({"policy.hierarchical.plan_every": "0"}, "policy.hierarchical.plan_every"),
       ({"policy.hierarchical.executor_depth": "0"}, "policy.hierarchical.executor_depth"),
       ({"policy.hierarchical.executor_steps": "0"}, "policy.hierarchical.executor_steps"),
       ({"policy.hierarchical.executor_width": "-1"}, "policy.hierarchical.executor_width"),
       ({"policy.joint.independent_t": "maybe"}, "policy.joint.independent_t"),
       ({"policy.joint.independent_t": "true", "paradigm": "joint", "policy.integration": "latent_frame"},
        "policy.joint.independent_t"),
       ({"policy.latent_frame.state_frames": "true"}, "policy.latent_frame.state_frames"),
       ({"policy.latent_frame.state_frames": "2"}, "policy.latent_frame.state_frames")]


@pytest.mark.parametrize("flags,key", BAD, ids=[f"{k}={v}" for f, _ in BAD for k, v in list(f.items())[:1]])
def test_a_bad_value_is_refused_naming_its_section_key(flags, key, tmp_path, capsys):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(TrainConfig, [f"--{k}={v}" for k, v in flags.items()])
    capsys.readouterr()
    assert main(["train", *[f"--{k}={v}" for k, v in flags.items()], f"--out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0]


@pytest.mark.parametrize("section,key", [(MimicConfig(feature_noise=1.5), "policy.mimic.feature_noise"),
                                         (HierarchicalConfig(plan_every=0), "policy.hierarchical.plan_every"),
                                         (HierarchicalConfig(executor_width=-2), "policy.hierarchical.executor_width")])
def test_each_section_checks_itself(section, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        section.check()


def test_each_strategy_names_the_sections_it_reads():
    """`settings` (what `wam variants` prints) names real sections or flat keys; every section has a reader."""
    fields = {k.split(".")[0] for k in flat_keys(PolicyModelConfig)}
    read = set()
    for cls in [*VARIANTS.values(), *REFERENCES.values()]:
        for name in cls.settings:
            assert name in PolicyModelConfig.SECTIONS or fnmatch.filter(fields, name), (cls, name)
            read.add(name)
    assert set(PolicyModelConfig.SECTIONS) <= read
    assert VARIANTS["mimic", "tokens"].settings == ("mimic",) and REFERENCES["conv_reference"].settings == ("reference",)


# -- old flat keys ------------------------------------------------------------------------------------------
# every retired key with a value away from its default, and the key it now lives at (written out by hand, so a
# wrong entry in the mapping table cannot hide)
OLD_TO_NEW = {"feature_noise": ("mimic.feature_noise", 0.3), "independent_t": ("joint.independent_t", True),
              "state_frames": ("latent_frame.state_frames", True),
              "subgoal_index": ("hierarchical.subgoal_index", 0), "plan_every": ("hierarchical.plan_every", 4),
              "executor_width": ("hierarchical.executor_width", 24),
              "executor_depth": ("hierarchical.executor_depth", 3),
              "executor_steps": ("hierarchical.executor_steps", 7),
              "ref_channels": ("reference.channels", (8, 16)), "ref_keypoints": ("reference.keypoints", 4),
              "ref_feature": ("reference.feature", 16), "ref_unet": ("reference.unet", (16, 32)),
              "ref_shift": ("reference.shift", 0),
              "lam_codes": ("latent_actions.codes", 8), "lam_dim": ("latent_actions.dim", 8),
              "lam_width": ("latent_actions.width", 32), "lam_beta": ("latent_actions.beta", 0.5),
              "code_weight": ("latent_actions.code_weight", 0.5), "tune_backbone": ("latent_actions.tune_backbone", True)}


def flag(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


@pytest.fixture
def fresh_notes(monkeypatch):
    """Notes on retired keys print once per process: start from none printed."""
    monkeypatch.setattr(wam.config, "_NOTED", set())


def test_old_flat_keys_give_the_same_config_as_the_sections(fresh_notes, tmp_path, capsys):
    old = apply_overrides(TrainConfig(), {f"policy.{k}": flag(v) for k, (_, v) in OLD_TO_NEW.items()})
    new = apply_overrides(TrainConfig(), {f"policy.{n}": flag(v) for n, v in OLD_TO_NEW.values()})
    assert old == new and old != TrainConfig()
    for section_key, value in OLD_TO_NEW.values():
        section, key = section_key.split(".")
        assert getattr(getattr(old.policy, section), key) == value != getattr(getattr(PolicyModelConfig(), section), key)
    notes = [line for line in capsys.readouterr().err.splitlines() if "retired" in line]
    assert len(notes) == 1 and "policy.mimic.feature_noise" in notes[0] and "policy.reference." in notes[0]
    assert "policy.latent_actions." in notes[0]
    # a user's YAML preset with the old keys, nested as the old save wrote them; flags still win over it
    preset = tmp_path / "old.yaml"
    preset.write_text(yaml.safe_dump({"policy": {k: list(v) if isinstance(v, tuple) else v
                                                 for k, (_, v) in OLD_TO_NEW.items()}}))
    flags = {"paradigm": "joint", "policy.integration": "latent_frame", "policy.joint.independent_t": False}
    valid = apply_overrides(new, flags)
    assert parse_config(TrainConfig, ["--config", str(preset), *[f"--{k}={v}" for k, v in flags.items()]]) == valid
    # what is saved now uses the sections and loads back unchanged, with no note
    save_config(valid, tmp_path / "new.yaml")
    assert "feature_noise" not in yaml.safe_load((tmp_path / "new.yaml").read_text())["policy"]
    capsys.readouterr()
    assert load_config(TrainConfig, tmp_path / "new.yaml") == valid
    assert "retired" not in capsys.readouterr().err


def old_checkpoint(cfg: TrainConfig, run, old: dict) -> None:
    """A checkpoint folder as the code before the sections wrote it: the policy's weights, and a config.yaml
    with the per-paradigm keys flat under `policy` (`old`) instead of in sections."""
    tok = None if cfg.paradigm in REFERENCES else frame_tokenizer(
        cfg.policy.backbone, PretrainConfig(data=cfg.data, tokenizer=cfg.tokenizer).tokenizer_config())
    stats = {k: {s: np.zeros(d) for s in ("mean", "std", "min", "max")}
             for k, d in {"observation.state": cfg.policy.state_dim, "action": cfg.policy.action_dim}.items()}
    torch.manual_seed(0)
    policy = build_policy(cfg, tok, stats, cfg.data.image_key)
    folder = save_checkpoint(run, 1, KIND, policy.state_dict(), None, None, {}, cfg)
    tree = yaml.safe_load((folder / "config.yaml").read_text())
    for section in PolicyModelConfig.SECTIONS:
        del tree["policy"][section]
    tree["policy"].update(old)
    (folder / "config.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    write_manifest(folder)  # as it was saved then


TINY = {"data.image_size": 32, "tokenizer.base_channels": 8, "tokenizer.latent_channels": 4,
        "policy.backbone.depth": 1, "policy.backbone.width": 64, "policy.future": (2, 4), "policy.chunk": 3,
        "policy.sample_steps": 2, "text_encoder": "hash"}


@pytest.mark.parametrize("paradigm,old", [
    ("hierarchical", {"executor_width": 24, "executor_depth": 3, "plan_every": 4, "feature_noise": 0.3}),
    ("conv_reference", {"ref_channels": [8, 16], "ref_feature": 16, "ref_unet": [16, 32], "ref_keypoints": 4})])
def test_an_old_checkpoint_folder_loads(paradigm, old, fresh_notes, tmp_path, capsys):
    """The old keys reach the sections: the weights (whose shapes they set) load, and the config is the same."""
    new = {f"policy.{OLD_TO_NEW[k][0]}": tuple(v) if isinstance(v, list) else v for k, v in old.items()}
    cfg = apply_overrides(TrainConfig(), {**TINY, "paradigm": paradigm, **new})
    old_checkpoint(cfg, tmp_path / "run", old)
    policy, saved = load_policy(tmp_path / "run")
    assert saved == cfg
    if paradigm == "hierarchical":
        assert policy.paradigm.executor.width == 24 and len(policy.paradigm.executor.blocks) == 3
    else:
        assert policy.paradigm.cfg.reference.unet == (16, 32)
    assert len([line for line in capsys.readouterr().err.splitlines() if "retired" in line]) == 1


def test_the_retired_lam_weight_loads_as_old_configs_hold_it_and_refuses_another_value(fresh_notes):
    """`policy.lam_weight` (the LAM once trained in `wam train`) has no successor: 1.0, what every old config holds,
    is dropped; another value meant something that no longer happens, and is refused by name."""
    assert apply_overrides(TrainConfig(), {"policy.lam_weight": 1.0}) == TrainConfig()
    with pytest.raises(ConfigError, match="policy.lam_weight is retired"):
        apply_overrides(TrainConfig(), {"policy.lam_weight": 0.5})
