"""The shared backbone: one transformer over token groups, each with its own flow time.

A forward pass takes a list of `TokenGroup`s (wam.nn.token_groups; text, obs, future, action, ...), concatenates their
tokens and runs one stack of blocks over all of them. Three knobs cover every WAM paradigm:

1. **a flow time per group** — `t` of a group (B,) is embedded (sinusoid -> MLP) and modulates every
   block through adaLN-Zero (shift/scale/gate), token by token according to its group; a clean
   conditioning group has `t=None`, treated as t=0;
2. **an attention mask between groups** — `GroupMask`: which groups a group may attend to, and
   which groups are causal in time. A mask acts per layer: information flows *transitively*
   through layers (action -> obs -> future leaks the future into action by layer 2), so block the
   whole path; `GroupMask.reachable` shows what can influence what;
3. **weights per modality** — `BackboneConfig.mot`: monolithic (all modalities share one set of
   weights) or Mixture-of-Transformers (per-modality adaLN/LayerNorms, QKV, QK-norm, out projection
   and MLP; one joint attention over all tokens, as Fast-WAM / LingBot-VA). Both are the same
   `Block`, whose weights are a `ModuleDict` keyed by modality (monolithic: one key, "shared").

Token order inside the joint sequence is free (attention sees positions only through RoPE and the
mask), so the backbone sorts groups by weight key: each modality is then one contiguous slice, and
MoT costs one matmul per modality, never a loop over tokens. Positions are 3-axis RoPE over
(time, row, col), the head dim split across the three axes. Modality/type embeddings and the
input/output projections are the caller's (tokenizers, action heads): this module maps width-sized
tokens to width-sized tokens.

    net = Backbone(BackboneConfig(depth=4), ["video", "action"])   # width 256, 4 heads of 64
    groups = [TokenGroup("obs", obs_tok, None, obs_pos, "video"),     # clean context
              TokenGroup("future", fut_tok, t_video, fut_pos, "video"),
              TokenGroup("action", act_tok, t_action, act_pos)]        # modality defaults to name
    mask = GroupMask.only({"obs": {"obs"}, "action": {"obs", "action"}}, causal_time=["future"])
    out = net(groups, mask)   # {"obs": (B, No, 256), "future": ..., "action": (B, Ta, 256)}

**K/V cache.** Where some groups see only each other (the clean text/obs/state of every paradigm's
mask), their keys and values at every layer do not depend on the rest, so sampling computes them
once: `cache = net.prefill(clean_groups, mask)`, then `net(noisy_groups, mask, cache=cache)` at each
denoising step runs only the noisy tokens, attending to the cached keys/values and their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.errors import ConfigError
from wam.nn.token_groups import GroupMask, TokenGroup

SHARED = "shared"  # the one weight key of a monolithic backbone


@dataclass
class BackboneConfig:
    depth: int = 6
    width: int = 0  # 0 = derived from depth: 64 * depth (nanochat); heads = width // 64
    mlp_ratio: float = 4.0
    mot: bool = False  # Mixture-of-Transformers: weights per modality, one joint attention
    qk_norm: bool = True
    rope_base: float = 100.0  # positions here are small (a few frames, an 8x8 grid)
    # a large pretrained video transformer instead (wam.backbones; the fields above then do not apply):
    kind: str = "wam"  # wam | wan | cosmos (diffusers' WanTransformer3DModel / CosmosTransformer3DModel)
    pretrained: str = ""  # a local diffusers pipeline folder (transformer/ + vae/); empty = random weights of `arch`
    arch: str = "tiny"  # the random architecture when `pretrained` is empty (wam.backbones.loading.ARCHS)
    text_adapter: bool = False  # learn a projection of wam's text embeddings to the backbone's text width
    checkpointing: bool = False  # activation (gradient) checkpointing per block

    def resolved_width(self) -> int:
        return self.width or 64 * self.depth

    def heads(self) -> int:
        return self.resolved_width() // 64

    def check(self) -> BackboneConfig:
        if self.kind != "wam":  # a diffusers backbone: checked by wam.backbones when it is built
            if self.kind not in ("wan", "cosmos"):
                raise ConfigError(f"backbone.kind must be wam, wan or cosmos, got {self.kind!r}")
            if self.pretrained and not Path(self.pretrained).expanduser().is_dir():
                raise ConfigError(f"backbone.pretrained={self.pretrained}: no such folder (a local diffusers pipeline "
                                  f"folder with transformer/ and vae/; see docs/backbones.md)")
            return self
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ConfigError(f"backbone.depth must be an integer >= 1, got {self.depth!r}")
        if not isinstance(self.width, int) or self.width < 0:
            raise ConfigError(f"backbone.width must be 0 (derived from depth) or >= 64, got {self.width!r}")
        w, h = self.resolved_width(), self.heads()
        if h < 1 or w % h or (w // h) % 2:
            raise ConfigError(f"backbone.width={w} must be >= 64 and split into {max(h, 1)} heads of an even size "
                              f"(heads = width // 64); try a multiple of 64")
        if not self.mlp_ratio > 0:
            raise ConfigError(f"backbone.mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        if not self.rope_base > 1:
            raise ConfigError(f"backbone.rope_base must be > 1, got {self.rope_base!r}")
        return self


def timestep_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """(...,) flow time -> (..., dim) sinusoid (DiT style; t in [0, 1] scaled to [0, 1000])."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = (t.float() * scale)[..., None] * freqs  # (..., half)
    emb = torch.cat([angles.cos(), angles.sin()], -1)
    return F.pad(emb, (0, dim % 2))


def _hi(x: Tensor) -> Tensor:
    """At least fp32 (norms and rotations of bf16 activations run in fp32)."""
    return x if x.dtype == torch.float64 else x.float()


class Rope3d(nn.Module):
    """Rotary embedding over (time, row, col): the head dim's pairs split across the three axes."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        pairs = head_dim // 2
        per_axis = [pairs - 2 * (pairs // 3), pairs // 3, pairs // 3]  # time gets the remainder
        freqs = [base ** (-torch.arange(n, dtype=torch.float64) / max(n, 1)) for n in per_axis]
        self.register_buffer("axis", torch.cat([torch.full((n,), a) for a, n in enumerate(per_axis)]), persistent=False)
        self.register_buffer("freqs", torch.cat(freqs), persistent=False)

    def forward(self, pos: Tensor, dtype: torch.dtype) -> Tensor:
        """pos (N, 3) -> rotations (N, 1, D/2) complex, broadcast over heads (angles in fp64)."""
        angles = pos[:, self.axis].double() * self.freqs
        cis = torch.polar(torch.ones_like(angles), angles)
        return cis.to(torch.complex128 if dtype == torch.float64 else torch.complex64)[:, None]

    @staticmethod
    def rotate(x: Tensor, cis: Tensor) -> Tensor:  # x (B, N, H, D): adjacent pairs rotated, >= fp32
        return torch.view_as_real(torch.view_as_complex(_hi(x).unflatten(-1, (-1, 2))) * cis).flatten(-2)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """(B, H, N, D) x3, mask (N, N) bool or None -> (B, H, N, D). `F.scaled_dot_product_attention`,
    except in bf16/fp16 on CPU: there its fused kernel's backward is ~3x slower than the explicit
    formula at N ~ 100 tokens (measured, torch 2.13), so we write it out, softmax in fp32."""
    low = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else v.dtype
    if q.device.type != "cpu" or low not in (torch.bfloat16, torch.float16):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5).to(low) @ k.to(low).transpose(-1, -2)  # (B, H, N, N)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))  # never a full row: the diagonal is kept
    return scores.softmax(-1, dtype=torch.float32).to(low) @ v.to(low)


class Expert(nn.Module):
    """One modality's weights in one block (monolithic: the only one)."""

    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        w, hd = cfg.resolved_width(), cfg.resolved_width() // cfg.heads()
        self.ada = _zero(nn.Linear(w, 6 * w))  # c -> shift/scale/gate for attention and MLP
        self.qkv = nn.Linear(w, 3 * w)
        self.q_norm = nn.RMSNorm(hd) if cfg.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(hd) if cfg.qk_norm else nn.Identity()
        self.out = nn.Linear(w, w)
        hidden = int(w * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(w, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, w))


def _zero(linear: nn.Linear) -> nn.Linear:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def _scale_offset(width: int, chunks: int, scales: Sequence[int]) -> Tensor:
    """(chunks*width,) with ones on the scale chunks: adaLN's `1 + scale`, added per group, not per token."""
    offset = torch.zeros(chunks, width)
    offset[list(scales)] = 1.0
    return offset.flatten()


@dataclass
class Layout:
    """How the joint sequence is laid out: per group its weight key and token span."""

    keys: list[str]  # (G,) weight key of each group
    sizes: list[int]  # (G,) tokens of each group
    segments: list[tuple[str, int, int]]  # contiguous runs of one weight key: (key, start, end)


def modulation(linears: Callable[[str], nn.Module], c: Tensor, layout: Layout, offset: Tensor) -> Tensor:
    """Per-group conditioning c (G, B, W) -> per-token modulation (B, N, k*W) (broadcast if G=1)."""
    per_group = [(linears(k)(c[i]) + offset)[:, None] for i, k in enumerate(layout.keys)]  # (B, 1, k*W) each
    if len(per_group) == 1:
        return per_group[0]
    # expand + cat, not index_select: the backward of a gather (index_add) is ~50x slower on CPU
    return torch.cat([m.expand(-1, n, -1) for m, n in zip(per_group, layout.sizes)], 1)


def per_key(fn: Callable[[str, Tensor], Any], x: Tensor, layout: Layout) -> Any:
    """Apply `fn(key, x_slice)` to each weight key's contiguous slice of x (B, N, .) and rejoin
    the results (a tensor, or a tuple of tensors) along the token axis."""
    outs = [fn(k, x[:, s:e]) for k, s, e in layout.segments]
    if len(outs) == 1:
        return outs[0]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts, 1) for parts in zip(*outs))
    return torch.cat(outs, 1)


class Block(nn.Module):
    """adaLN-Zero transformer block; weights per key, attention joint over all tokens."""

    def __init__(self, cfg: BackboneConfig, keys: Sequence[str]):
        super().__init__()
        self.heads = cfg.heads()
        self.experts = nn.ModuleDict({k: Expert(cfg) for k in keys})
        self.register_buffer("offset", _scale_offset(cfg.resolved_width(), 6, [1, 4]), persistent=False)

    def _qkv(self, key: str, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # (B, n, W) -> 3 x (B, n, H, D)
        e = self.experts[key]
        q, k, v = e.qkv(h).unflatten(-1, (3, self.heads, -1)).unbind(2)
        return e.q_norm(_hi(q)), e.k_norm(_hi(k)), v  # q, k normed in fp32 (then RoPE), v as computed

    def forward(self, x: Tensor, c: Tensor, layout: Layout, mask: Tensor | None, cis: Tensor,
                past: tuple[Tensor, Tensor] | None = None, store: list | None = None) -> Tensor:
        # x (B, N, W); c (G, B, W) conditioning per group; mask (N, Np + N) bool or None (all True); cis (N, 1, D/2)
        # past: cached (k, v) (B, Np, H, D) of tokens that precede x; store: receives this layer's (k, v)
        mod = modulation(lambda k: self.experts[k].ada, c, layout, self.offset)
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, -1)  # scale = 1 + adaLN's scale
        h = torch.addcmul(shift1, F.layer_norm(x, x.shape[-1:]), scale1)
        q, k, v = per_key(self._qkv, h, layout)  # (B, N, H, D)
        q, k = Rope3d.rotate(q, cis), Rope3d.rotate(k, cis)  # fp32; attention casts to bf16 if on
        if store is not None:
            store.append((k, v))
        if past is not None:
            k, v = torch.cat([past[0], k], 1), torch.cat([past[1], v], 1)  # (B, Np + N, H, D)
        a = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask).transpose(1, 2).flatten(2)
        x = torch.addcmul(x, gate1, per_key(lambda key, z: self.experts[key].out(z), a, layout))
        h = torch.addcmul(shift2, F.layer_norm(x, x.shape[-1:]), scale2)
        return torch.addcmul(x, gate2, per_key(lambda key, z: self.experts[key].mlp(z), h, layout))


class Backbone(nn.Module):
    """Token groups (each with a flow time, positions, modality) -> output tokens per group."""

    def __init__(self, cfg: BackboneConfig, modalities: Sequence[str]):
        super().__init__()
        self.cfg = cfg.check()
        self.modalities = list(dict.fromkeys(modalities))
        if not self.modalities:
            raise ConfigError("Backbone needs at least one modality name")
        self.keys = self.modalities if cfg.mot else [SHARED]
        w = cfg.resolved_width()
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.rope = Rope3d(w // cfg.heads(), cfg.rope_base)
        self.blocks = nn.ModuleList([Block(cfg, self.keys) for _ in range(cfg.depth)])
        self.final_ada = nn.ModuleDict({k: _zero(nn.Linear(w, 2 * w)) for k in self.keys})  # shift/scale
        self.register_buffer("final_offset", _scale_offset(w, 2, [1]), persistent=False)

    def key_of(self, group: TokenGroup) -> str:
        if group.kind not in self.modalities:
            raise ValueError(f"group {group.name!r} has modality {group.kind!r}; this backbone knows {self.modalities}")
        return group.kind if self.cfg.mot else SHARED

    def _check(self, groups: Sequence[TokenGroup]) -> None:
        if not groups:
            raise ValueError("Backbone.forward needs at least one token group")
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(f"token group names must be unique, got {names}")
        b, w = groups[0].tokens.shape[0], self.cfg.resolved_width()
        for g in groups:
            n = g.tokens.shape[1] if g.tokens.dim() == 3 else -1
            if g.tokens.shape != (b, n, w):
                raise ValueError(f"group {g.name!r}: tokens {tuple(g.tokens.shape)}, expected ({b}, N, {w})")
            if g.pos.shape != (n, 3):
                raise ValueError(f"group {g.name!r}: pos {tuple(g.pos.shape)}, expected ({n}, 3)")
            if g.t is not None and g.t.shape not in ((b,), ()):
                raise ValueError(f"group {g.name!r}: t {tuple(g.t.shape)}, expected ({b},)")

    def _layout(self, gs: Sequence[TokenGroup]) -> Layout:
        keys = [self.key_of(g) for g in gs]
        starts = [0, *accumulate(g.tokens.shape[1] for g in gs)]
        segments: list[tuple[str, int, int]] = []
        for key, s, e in zip(keys, starts, starts[1:]):
            if segments and segments[-1][0] == key:
                segments[-1] = (key, segments[-1][1], e)
            else:
                segments.append((key, s, e))
        return Layout(keys, [g.tokens.shape[1] for g in gs], segments)

    def forward(self, groups: Sequence[TokenGroup], mask: GroupMask | None = None,
                cache: KVCache | None = None, store: list | None = None) -> dict[str, Tensor]:
        """Output tokens per group; with a `cache` (from `prefill`), of the uncached groups only."""
        self._check(groups)
        gs = sorted(groups, key=lambda g: self.keys.index(self.key_of(g)))  # stable: one slice per key
        b, dev = gs[0].tokens.shape[0], gs[0].tokens.device
        layout = self._layout(gs)
        mask = mask or GroupMask()
        if cache is None:
            attn = mask.build(gs)  # (N, N)
        else:
            if cache.names & {g.name for g in gs} or b != cache.groups[0].tokens.shape[0]:
                raise ValueError("groups beside a K/V cache must be new ones, at the batch size it was filled for")
            attn = mask.build([*cache.groups, *gs])[cache.tokens:]  # (N, Nc + N): rows of the new tokens
        attn = None if bool(attn.all()) else attn
        cis = self.rope(torch.cat([g.pos for g in gs]).to(dev), gs[0].tokens.dtype)  # (N, 1, D/2) complex
        t = torch.stack([torch.zeros(b, device=dev) if g.t is None else g.t.to(dev).float().expand(b) for g in gs])
        c = F.silu(self.time_mlp(timestep_embedding(t, self.cfg.resolved_width()).to(gs[0].tokens.dtype)))  # (G, B, W)

        x = torch.cat([g.tokens for g in gs], 1)  # (B, N, W)
        for i, block in enumerate(self.blocks):
            x = block(x, c, layout, attn, cis, past=None if cache is None else cache.kv[i], store=store)
        shift, scale = modulation(self.final_ada.__getitem__, c, layout, self.final_offset).chunk(2, -1)
        x = torch.addcmul(shift, F.layer_norm(x, x.shape[-1:]), scale)
        starts = [0, *accumulate(layout.sizes)]
        return {g.name: x[:, s:e] for g, s, e in zip(gs, starts, starts[1:])}

    @torch.no_grad()
    def prefill(self, groups: Sequence[TokenGroup], mask: GroupMask | None = None) -> KVCache:
        """Run `groups` alone (they must see no other group) and keep every layer's keys/values."""
        mask = mask or GroupMask()
        names = {g.name for g in groups}
        for g in groups:
            allowed = None if mask.allowed is None else mask.allowed.get(g.name)
            if allowed is None or set(allowed) - names:
                raise ValueError(f"group {g.name!r} may see groups outside {sorted(names)}: its keys/values "
                                 f"depend on them and cannot be cached")
        gs = sorted(groups, key=lambda g: self.keys.index(self.key_of(g)))
        kv: list[tuple[Tensor, Tensor]] = []
        self.forward(gs, mask, store=kv)
        return KVCache(list(gs), kv)


@dataclass
class KVCache:
    """Per layer (k, v) (B, Nc, H, D) of groups that see only each other, in the order of `groups`."""

    groups: list[TokenGroup]
    kv: list[tuple[Tensor, Tensor]]

    @property
    def tokens(self) -> int:
        return sum(g.tokens.shape[1] for g in self.groups)

    @property
    def names(self) -> set[str]:
        return {g.name for g in self.groups}
