"""Bad input on the diffusers path: one clear line naming the file or field, exit 2, never a traceback."""

from __future__ import annotations

import json

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from tests.backbones.test_wan import TINY  # noqa: E402
from wam.backbones.loading import VAES  # noqa: E402
from wam.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Diffusers folders: `ok` (16 latent channels, text width 384), `narrow_text` (text_dim 16),
    `four_channels` (a transformer of 4 channels beside a 16-channel VAE), `not_diffusers`."""
    root = tmp_path_factory.mktemp("folders")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(**VAES["tiny"])
    shapes = {"ok": dict(TINY, in_channels=16, out_channels=16, text_dim=384),
              "narrow_text": dict(TINY, in_channels=16, out_channels=16),
              "four_channels": dict(TINY, text_dim=384)}
    for name, shape in shapes.items():
        diffusers.WanTransformer3DModel(**shape).save_pretrained(root / name / "transformer")
        vae.save_pretrained(root / name / "vae")
    (root / "not_diffusers" / "transformer").mkdir(parents=True)
    (root / "not_diffusers" / "transformer" / "weights.pt").write_bytes(b"")
    return root


def last_line(capsys) -> str:
    """The error line (progress bars share stderr; the error is the last line, and the only one not a bar)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def _pretrain(tiny_dataset, tmp_path, *flags) -> list[str]:
    return ["pretrain", f"--data.path={tiny_dataset[0]}", f"--out={tmp_path / 'wm'}", "--data.image_size=32",
            "--text_encoder=hash", "--optim.steps=1", "--optim.batch_size=2", "--model.future=2", *flags]


@pytest.mark.parametrize("folder,kind,extra,expected", [
    ("not_diffusers", "wan", [], "transformer/config.json is missing"),
    ("ok", "cosmos", [], "_class_name is 'WanTransformer3DModel', this backbone kind needs 'CosmosTransformer3DModel'"),
    ("four_channels", "wan", [], "the transformer reads 4 and writes 4 latent channels, the VAE (vae/config.json z_dim) makes 16"),
    ("narrow_text", "wan", [], "text_dim is 16, wam's cached instruction embeddings are 384 wide: set backbone.text_adapter=true"),
])
def test_bad_folders(folders, tiny_dataset, tmp_path, capsys, folder, kind, extra, expected):
    argv = _pretrain(tiny_dataset, tmp_path, f"--model.backbone.kind={kind}",
                     f"--model.backbone.pretrained={folders / folder}", *extra)
    assert main(argv) == 2
    err = last_line(capsys)
    assert err.startswith("error: ") and expected in err, err


@pytest.mark.slow
def test_a_narrow_text_width_works_with_the_adapter(folders, tiny_dataset, tmp_path):
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=wan", "--model.backbone.text_adapter=true",
                          f"--model.backbone.pretrained={folders / 'narrow_text'}")) == 0


def test_lora_targets_that_match_nothing(folders, tiny_dataset, tmp_path, capsys):
    argv = ["train", "--paradigm=representation", f"--data.path={tiny_dataset[0]}", f"--out={tmp_path / 'p'}",
            "--data.image_size=32", "--text_encoder=hash", "--optim.steps=1", "--policy.future=2",
            "--policy.backbone.kind=wan", f"--policy.backbone.pretrained={folders / 'ok'}",
            "--policy.lora.rank=4", "--policy.lora.targets=to_qq,ffn.proj"]
    assert main(argv) == 2
    err = last_line(capsys)
    assert err.startswith("error: ") and "policy.lora.targets='to_qq,ffn.proj' matches no Linear module" in err


def test_wrong_kind_and_arch(tiny_dataset, tmp_path, capsys):
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=svd")) == 2
    assert "backbone.kind must be wam, wan or cosmos" in last_line(capsys)
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=wan", "--model.backbone.arch=huge")) == 2
    assert "backbone.arch='huge' is not a wan architecture" in last_line(capsys)
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=cosmos",
                          f"--model.backbone.pretrained={tmp_path / 'nowhere'}")) == 2
    assert f"backbone.pretrained={tmp_path / 'nowhere'}: no such folder" in last_line(capsys)


def test_a_config_that_is_not_json(folders, tmp_path, tiny_dataset, capsys):
    bad = tmp_path / "bad" / "transformer"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{not json")
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=wan", f"--model.backbone.pretrained={bad.parent}")) == 2
    assert "config.json is not valid JSON" in last_line(capsys)
    (bad / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    assert main(_pretrain(tiny_dataset, tmp_path, "--model.backbone.kind=wan", f"--model.backbone.pretrained={bad.parent}")) == 2
    assert "holds no weights" in last_line(capsys)
