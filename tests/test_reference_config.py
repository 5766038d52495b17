"""The outside reference's own section (`policy.reference`, wam.reference_config): a bad value is refused with one
line naming its key, from a flag as from `wam train`; the old `policy.ref_*` keys are in
tests/paradigms/test_settings.py."""

from __future__ import annotations

import pytest

from wam.cli import main
from wam.config import parse_config
from wam.errors import ConfigError
from wam.reference_config import ReferenceConfig
from wam.train import TrainConfig

BAD = [("channels", "0,16"), ("channels", ""), ("unet", "16,0"), ("unet", ""), ("feature", "0"), ("keypoints", "-1"),
       ("shift", "-2")]


@pytest.mark.parametrize("key,value", BAD)
def test_a_bad_value_is_refused_naming_its_key(key, value, tmp_path, capsys):
    flags = ["--paradigm=conv_reference", f"--policy.reference.{key}={value}"]
    with pytest.raises(ConfigError, match=rf"policy\.reference\.{key}"):
        parse_config(TrainConfig, flags)
    capsys.readouterr()
    assert main(["train", *flags, f"--out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"policy.reference.{key}" in err[0]


def test_the_defaults_pass_and_the_section_checks_itself():
    ReferenceConfig().check()
    with pytest.raises(ConfigError, match=r"policy\.reference\.keypoints"):
        ReferenceConfig(keypoints=-1).check()
