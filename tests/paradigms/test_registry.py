"""The registry of (paradigm, integration) combinations: valid ones build, invalid ones say why."""

import pytest

from wam.errors import ConfigError
from wam.paradigms import INVALID, VARIANTS, strategy, variants


def test_every_implemented_variant_is_listed_valid():
    listed = {(v.paradigm, v.integration) for v in variants() if v.valid}
    assert listed == set(VARIANTS)


def test_invalid_combination_is_refused_with_its_reason():
    (name, integration), reason = next(iter(INVALID.items()))
    with pytest.raises(ConfigError, match="refused") as info:
        strategy(name, integration)
    assert reason in str(info.value)


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ConfigError, match="choose one of"):
        strategy("telepathy")
    with pytest.raises(ConfigError, match="choose one of"):
        strategy("joint", "smoke_signals")


def test_invalid_and_implemented_never_overlap():
    assert not set(INVALID) & set(VARIANTS)
