"""The registry of (paradigm, integration) combinations: valid ones build, invalid ones say why."""

import pytest

from wam.cli import main
from wam.errors import ConfigError
from wam.paradigms import (INTEGRATIONS, INVALID, PARADIGM_NAMES, PLANNERS, VARIANTS, capabilities, strategy,
                           variants)


def test_every_implemented_variant_is_listed_valid():
    listed = {(v.paradigm, v.integration) for v in variants() if v.valid}
    assert listed == set(VARIANTS) | set(PLANNERS)


def test_planning_is_listed_but_not_trained():
    """The acting-only row: `wam train --paradigm=planning` is refused, pointing at `wam plan`."""
    with pytest.raises(ConfigError, match="wam plan --world_model"):
        strategy("planning")


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
    assert not set(INVALID) & (set(VARIANTS) | set(PLANNERS))


def test_cli_variants_prints_every_pair_with_status_architecture_reads_and_reason(capsys):
    assert main(["variants"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(line.split()[:2]): line for line in lines[1:] if line.split()[0] in PARADIGM_NAMES}
    assert "outside the family: conv_reference (reads policy.reference)" in lines
    assert set(rows) == {(p, i) for p in PARADIGM_NAMES for i in INTEGRATIONS}
    for (name, integration), line in rows.items():
        status = line.split()[2]
        if (name, integration) in {**VARIANTS, **PLANNERS}:
            cls = {**VARIANTS, **PLANNERS}[name, integration]
            reads = ",".join(f"policy.{s}" for s in cls.settings) or "-"
            assert status == "valid" and line.split()[3:6] == [cls.architecture, ",".join(capabilities(cls)) or "-",
                                                               reads]
        elif (name, integration) in INVALID:
            assert status == "refused" and line.endswith(INVALID[name, integration])
        else:
            assert line.split()[2:4] == ["not", "implemented"]
