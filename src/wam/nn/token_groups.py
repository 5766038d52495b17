"""Token groups (a named set of tokens with its flow time and 3-D positions) and who attends to whom.

The backbone sees a list of `TokenGroup`s (observation, future video, actions, ...) and a `GroupMask`
saying which group may attend to which: the one place a paradigm states its information flow.

    mask = GroupMask.only({"obs": {"obs"}, "action": {"obs", "action"}})
    mask.build(groups)   # (N_total, N_total) bool, True = may attend
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


CLEAN = frozenset({"text", "obs", "state"})  # the conditioning groups: never noised, seeing only each other


@dataclass
class TokenGroup:
    name: str
    tokens: Tensor  # (B, N, width)
    t: Tensor | None  # (B,) (or a scalar) flow time in [0, 1]; None = clean conditioning (t = 0)
    pos: Tensor  # (N, 3) long: (time, row, col)
    modality: str | None = None  # which weights under MoT; None = name

    @property
    def kind(self) -> str:
        return self.modality or self.name


@dataclass
class GroupMask:
    """Who may attend to whom. `allowed[q]`: groups that group q sees (missing/None = all);
    `denied[q]`: groups q never sees (applied after `allowed`); `causal_time`: groups whose tokens
    see only tokens of the same group at time <= their own. A token always sees itself."""

    allowed: dict[str, set[str]] | None = None
    causal_time: set[str] = field(default_factory=set)
    denied: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def full(cls) -> GroupMask:
        return cls()

    @classmethod
    def blocked(cls, query: str, keys: set[str] | Sequence[str]) -> GroupMask:
        return cls(denied={query: set(keys)})

    @classmethod
    def only(cls, allowed: dict[str, set[str]], causal_time: Sequence[str] = ()) -> GroupMask:
        return cls(allowed={q: set(k) for q, k in allowed.items()}, causal_time=set(causal_time))

    def sees(self, query: str, key: str) -> bool:
        allowed = None if self.allowed is None else self.allowed.get(query)
        return (allowed is None or key in allowed) and key not in self.denied.get(query, set())

    def reachable(self, names: Sequence[str]) -> dict[str, set[str]]:
        """Groups whose tokens can influence each group's outputs through any number of layers."""
        reach = {q: {k for k in names if self.sees(q, k)} | {q} for q in names}
        changed = True
        while changed:
            changed = False
            for q in names:
                more = set().union(*(reach[k] for k in reach[q])) - reach[q]
                if more:
                    reach[q] |= more
                    changed = True
        return reach

    def build(self, groups: Sequence[TokenGroup]) -> Tensor:
        """(N_total, N_total) bool, True = may attend; rows/cols in the order of `groups`."""
        names = [g.name for g in groups]
        device = groups[0].pos.device
        sizes = torch.tensor([g.tokens.shape[1] for g in groups], device=device)
        gid = torch.repeat_interleave(torch.arange(len(groups), device=device), sizes)  # (N,)
        table = torch.tensor([[self.sees(q, k) for k in names] for q in names], device=device)  # (G, G)
        mask = table[gid[:, None], gid[None, :]]  # (N, N)
        causal = [i for i, n in enumerate(names) if n in self.causal_time]
        if causal:
            time = torch.cat([g.pos[:, 0] for g in groups])  # (N,)
            in_causal = torch.isin(gid, torch.tensor(causal, device=device))
            later = (gid[:, None] == gid[None, :]) & in_causal[:, None] & (time[None, :] > time[:, None])
            mask &= ~later
        return mask | torch.eye(len(gid), dtype=torch.bool, device=device)
