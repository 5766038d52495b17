"""Sampling with the K/V cache of the clean groups gives the uncached actions; a known prefix is kept (RTC)."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import SETTINGS, batch, full_batch, perturbed, tiny
from wam.nn.token_groups import GroupMask
from wam.nn.transformer import Backbone

CACHED = ["action_only", "representation", "joint", "inverse_dynamics"]  # + RTC
VARIANTS = [(n, "tokens") for n in [*CACHED, "hierarchical", "mimic", "future_conditioned"]] + [("joint", "latent_frame"),
                                                                  ("joint", "latent_actions"),
                                                                  ("inverse_dynamics", "latent_actions")]
ROWS = [(n, i, "") for n, i in VARIANTS] + [("joint", "latent_frame", "state+value+best_of_2")]  # contract's settings


def act(p, b, **kw):
    if hasattr(p, "reset"):
        p.reset()  # hierarchical: plan anew each call
    return p.act(b, generator=torch.Generator().manual_seed(0), **kw)


@pytest.mark.parametrize("mot", [False, True])
@pytest.mark.parametrize("name, integration, setting", ROWS, ids=["-".join(filter(None, r)) for r in ROWS])
def test_cached_and_uncached_sampling_give_the_same_actions(name, integration, setting, mot, monkeypatch):
    p = perturbed(tiny(name, mot=mot, integration=integration, sample_steps=3, **SETTINGS[setting]), 0.05).eval()
    b = (full_batch if setting else batch)(2)
    p.cfg.kv_cache = False
    plain = act(p, b)
    seen = []
    forward = Backbone.forward
    monkeypatch.setattr(Backbone, "forward", lambda self, groups, *a, **k: seen.append(
        {g.name for g in groups}) or forward(self, groups, *a, **k))
    p.cfg.kv_cache = True
    cached = act(p, b)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)
    assert not any({"text", "obs", "state"} & names for names in seen[1:] if "action" in names)  # reused, not rerun


def test_a_mask_that_lets_clean_groups_see_noised_ones_is_not_cached():
    p, b = tiny("joint"), batch(2)
    assert p.parts.prefill(b, GroupMask.full()) is None
    from wam.paradigms.joint import MASK

    assert p.parts.prefill(b, MASK) is not None


@pytest.mark.parametrize("name", [*CACHED, "future_conditioned"])
def test_a_committed_prefix_is_kept_and_changes_the_rest(name):
    p, b = perturbed(tiny(name), 0.05).eval(), batch(2)
    prefix = torch.rand(2, 2, 4) * 2 - 1
    free, kept = act(p, b), act(p, b, prefix=prefix)
    torch.testing.assert_close(kept[:, :2], prefix)
    assert not torch.allclose(kept[:, 2:], free[:, 2:], atol=1e-4)  # the rest is generated to continue it
