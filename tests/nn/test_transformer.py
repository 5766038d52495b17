"""The shared backbone on a tiny config: shapes, gradients, masks, time conditioning, RoPE, MoT."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wam.errors import ConfigError
from wam.nn.token_groups import GroupMask, TokenGroup
from wam.nn.transformer import SHARED, Backbone, BackboneConfig, Layout, attention

MODALITIES = ["text", "video", "action"]
NAMES = ["text", "obs", "future", "action"]
# Fast-WAM style: context never sees the future, the action sees context only (no path to future).
NO_FUTURE = GroupMask.only({"text": {"text"}, "obs": {"text", "obs"}, "action": {"text", "obs", "action"}})
MASKS = {
    "full": GroupMask.full(),
    "blocked": NO_FUTURE,
    "action_not_future": GroupMask.blocked("action", {"future"}),  # per layer only: leaks through obs
    "causal": GroupMask.only({"text": {"text"}, "obs": {"text", "obs"}, "action": {"text", "obs", "action"}},
                             causal_time=["future"]),
}


def grid(times: int, rows: int, cols: int, t0: int = 0) -> torch.Tensor:
    """(times*rows*cols, 3) positions, time-major."""
    t, r, c = torch.meshgrid(torch.arange(t0, t0 + times), torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([t, r, c], -1).reshape(-1, 3)


def make_groups(batch: int = 2, width: int = 64, seed: int = 0, dtype=torch.float32) -> list[TokenGroup]:
    g = torch.Generator().manual_seed(seed)

    def tok(n: int) -> torch.Tensor:
        return torch.randn(batch, n, width, generator=g, dtype=dtype)

    return [
        TokenGroup("text", tok(2), None, torch.zeros(2, 3, dtype=torch.long)),
        TokenGroup("obs", tok(8), None, grid(2, 2, 2), "video"),
        TokenGroup("future", tok(8), torch.rand(batch, generator=g, dtype=dtype), grid(2, 2, 2, t0=2), "video"),
        TokenGroup("action", tok(4), torch.rand(batch, generator=g, dtype=dtype), grid(4, 1, 1)),
    ]


def make_net(mot: bool, trained: bool = True, seed: int = 0) -> Backbone:
    """A tiny backbone; `trained` fills the zero-initialised adaLN layers as training would."""
    torch.manual_seed(seed)
    net = Backbone(BackboneConfig(depth=2, width=64, mot=mot), MODALITIES)
    if trained:
        with torch.no_grad():
            for name, p in net.named_parameters():
                if "ada" in name:
                    p.normal_(0, 0.2)
    return net


def replace(groups: list[TokenGroup], name: str, **changes) -> list[TokenGroup]:
    return [TokenGroup(**{**vars(g), **changes}) if g.name == name else g for g in groups]


def test_width_derived_from_depth() -> None:
    cfg = BackboneConfig(depth=4)
    assert (cfg.resolved_width(), cfg.heads()) == (256, 4)
    assert (BackboneConfig(depth=2, width=128).resolved_width(), BackboneConfig(depth=2, width=128).heads()) == (128, 2)
    assert BackboneConfig(depth=2, width=64).check().heads() == 1


@pytest.mark.parametrize("bad", [dict(depth=0), dict(width=32), dict(width=-64), dict(width=130), dict(mlp_ratio=0.0),
                                 dict(rope_base=1.0)])
def test_bad_config_raises(bad: dict) -> None:
    with pytest.raises(ConfigError):
        BackboneConfig(**{"depth": 2, **bad}).check()
    with pytest.raises(ConfigError):
        Backbone(BackboneConfig(**{"depth": 2, **bad}), MODALITIES)


def test_bad_inputs_raise() -> None:
    net, groups = make_net(False), make_groups()
    with pytest.raises(ConfigError):
        Backbone(BackboneConfig(depth=2, width=64), [])
    with pytest.raises(ValueError, match="unique"):
        net(groups + [groups[0]])
    with pytest.raises(ValueError, match="modality"):
        net(replace(groups, "obs", modality="audio"))
    with pytest.raises(ValueError, match="tokens"):
        net(replace(groups, "obs", tokens=torch.randn(2, 8, 32)))
    with pytest.raises(ValueError, match="pos"):
        net(replace(groups, "obs", pos=grid(1, 2, 2)))
    with pytest.raises(ValueError, match="t "):
        net(replace(groups, "action", t=torch.rand(3)))


def test_mask_build() -> None:
    groups = [TokenGroup("a", torch.zeros(1, 2, 64), None, grid(2, 1, 1)),
              TokenGroup("b", torch.zeros(1, 3, 64), None, grid(3, 1, 1))]
    assert GroupMask.full().build(groups).all()
    m = GroupMask(allowed={"a": set()}, causal_time={"b"}).build(groups)
    expected = torch.tensor([[1, 0, 0, 0, 0],   # a sees only itself (the diagonal is always on)
                             [0, 1, 0, 0, 0],
                             [1, 1, 1, 0, 0],   # b sees a, and b up to its own time
                             [1, 1, 1, 1, 0],
                             [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m, expected)
    assert torch.equal(GroupMask.blocked("b", ["a"]).build(groups)[2:, :2], torch.zeros(3, 2, dtype=torch.bool))
    assert NO_FUTURE.reachable(NAMES)["action"] == {"text", "obs", "action"}
    assert "future" in GroupMask.blocked("action", {"future"}).reachable(NAMES)["action"]  # leaks via obs


@pytest.mark.parametrize("mot", [False, True])
@pytest.mark.parametrize("mask", list(MASKS))
def test_forward_backward(mot: bool, mask: str) -> None:
    net, groups = make_net(mot), make_groups()
    out = net(groups, MASKS[mask])
    assert set(out) == set(NAMES)
    for g in groups:
        assert out[g.name].shape == g.tokens.shape
        assert torch.isfinite(out[g.name]).all()
    sum((o * torch.randn_like(o)).sum() for o in out.values()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing}"
    keys = set(net.blocks[0].experts)
    assert keys == (set(MODALITIES) if mot else {SHARED})


def test_mot_has_weights_per_modality() -> None:
    mono, mot = make_net(False), make_net(True)
    n_mono = sum(p.numel() for p in mono.blocks.parameters())
    assert sum(p.numel() for p in mot.blocks.parameters()) == len(MODALITIES) * n_mono
    groups = make_groups()
    base = mot(groups)["action"]
    # the same tokens through the video weights give a different result; monolithic does not care
    assert not torch.allclose(mot(replace(groups, "action", modality="video"))["action"], base)
    assert torch.equal(mono(replace(groups, "action", modality="video"))["action"], mono(groups)["action"])


@pytest.mark.parametrize("mot", [False, True])
def test_adaln_zero_init_is_identity(mot: bool) -> None:
    net, groups = make_net(mot, trained=False), make_groups()
    x = torch.randn(2, 22, 64)
    c = torch.randn(4, 2, 64)
    layout = Layout(["text", "video", "video", "action"] if mot else [SHARED] * 4,
                    [2, 8, 8, 4],
                    [("text", 0, 2), ("video", 2, 18), ("action", 18, 22)] if mot else [(SHARED, 0, 22)])
    cis = net.rope(torch.cat([g.pos for g in groups]), x.dtype)
    assert torch.equal(net.blocks[0](x, c, layout, None, cis), x)  # residual branches start at zero
    out = net(groups)
    for g in groups:  # so the whole backbone is the final LayerNorm at init
        assert torch.equal(out[g.name], F.layer_norm(g.tokens, (64,)))
    # ... and learning can still start: the gates (adaLN layers) receive gradient
    sum((o * torch.randn_like(o)).sum() for o in out.values()).backward()
    assert net.blocks[0].experts[layout.keys[0]].ada.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mot", [False, True])
def test_mask_blocks_information(mot: bool) -> None:
    net, groups = make_net(mot), make_groups()
    base = net(groups, NO_FUTURE)
    changed = net(replace(groups, "future", tokens=torch.randn(2, 8, 64)), NO_FUTURE)
    for name in ["text", "obs", "action"]:  # none of them may see the future
        assert torch.equal(changed[name], base[name]), name
    assert not torch.allclose(changed["future"], base["future"])
    changed = net(replace(groups, "obs", tokens=torch.randn(2, 8, 64)), NO_FUTURE)
    assert not torch.allclose(changed["action"], base["action"])  # an allowed group does change it
    # a per-layer block alone leaks through two layers (action -> obs -> future), as reachable() says
    leaky = GroupMask.blocked("action", {"future"})
    assert not torch.allclose(net(replace(groups, "future", tokens=torch.randn(2, 8, 64)), leaky)["action"],
                              net(groups, leaky)["action"])


@pytest.mark.parametrize("mot", [False, True])
def test_causal_time(mot: bool) -> None:
    net, groups = make_net(mot), make_groups()
    mask = MASKS["causal"]
    base = net(groups, mask)
    future = groups[2].tokens.clone()
    future[:, 4:] += torch.randn(2, 4, 64)  # the later of the two future frames (time 3)
    changed = net(replace(groups, "future", tokens=future), mask)
    assert torch.equal(changed["future"][:, :4], base["future"][:, :4])
    assert not torch.allclose(changed["future"][:, 4:], base["future"][:, 4:])
    future = groups[2].tokens.clone()
    future[:, :4] += torch.randn(2, 4, 64)  # an earlier frame does reach the later one
    earlier_changed = net(replace(groups, "future", tokens=future), mask)["future"]
    assert not torch.allclose(earlier_changed[:, 4:], base["future"][:, 4:])


@pytest.mark.parametrize("mot", [False, True])
def test_time_conditioning(mot: bool) -> None:
    net, groups = make_net(mot), make_groups()
    base = net(groups)
    other = net(replace(groups, "action", t=torch.tensor([0.9, 0.1])))
    assert not torch.allclose(other["action"], base["action"])
    clean = net(replace(groups, "action", t=None))
    assert torch.equal(clean["action"], net(replace(groups, "action", t=torch.zeros(2)))["action"])


@pytest.mark.parametrize("mot", [False, True])
def test_rope_is_relative(mot: bool) -> None:
    net, groups = make_net(mot).double(), make_groups(dtype=torch.float64)
    base = net(groups, MASKS["causal"])
    shift = torch.tensor([5, -3, 7])  # every position moved by the same offset on every axis
    moved = net([replace([g], g.name, pos=g.pos + shift)[0] for g in groups], MASKS["causal"])
    for name in NAMES:
        torch.testing.assert_close(moved[name], base[name], rtol=0, atol=1e-10)
    # positions do matter: moving one group in time alone changes what it computes
    later = net(replace(groups, "future", pos=groups[2].pos + torch.tensor([1, 0, 0])), MASKS["causal"])
    assert not torch.allclose(later["future"], base["future"])


def test_group_order_does_not_matter() -> None:
    net, groups = make_net(False).double(), make_groups(dtype=torch.float64)
    base, flipped = net(groups), net(groups[::-1])
    for name in NAMES:
        torch.testing.assert_close(flipped[name], base[name], rtol=0, atol=1e-10)


@pytest.mark.parametrize("mot", [False, True])
def test_bf16_autocast(mot: bool) -> None:
    net, groups = make_net(mot), make_groups()
    ref = net(groups, NO_FUTURE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(groups, NO_FUTURE)
        changed = net(replace(groups, "future", tokens=torch.randn(2, 8, 64)), NO_FUTURE)
    for name in NAMES:
        assert out[name].dtype == torch.float32  # the residual stream stays fp32
        assert (out[name] - ref[name]).abs().max() < 0.1
    assert torch.equal(changed["action"], out["action"])  # the bf16 attention path masks exactly too


def reference_attention(q, k, v, mask):
    """Attention written out in float64: softmax(q k^T / sqrt(d), masked) v, True = may attend."""
    q, k, v = (x.double() for x in (q, k, v))
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def test_bf16_attention_matches_sdpa() -> None:
    """Both paths of `attention` (the fused kernel in fp32, the explicit bf16 formula) against the formula
    written out independently in float64, with and without a mask (which must change the result)."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 16, generator=g) for _ in range(3))
    mask = (torch.rand(10, 10, generator=g) > 0.5) | torch.eye(10, dtype=torch.bool)
    assert (reference_attention(q, k, v, mask) - reference_attention(q, k, v, None)).abs().max() > 0.1
    for m in (None, mask):
        ref = reference_attention(q, k, v, m).float()
        torch.testing.assert_close(attention(q, k, v, m), ref, atol=1e-5, rtol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = attention(q, k, v, m)
        assert low.dtype == torch.bfloat16 and (low.float() - ref).abs().max() < 0.05