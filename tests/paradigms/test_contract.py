"""Contract tests: every registered (paradigm, integration) variant, monolithic and Mixture-of-Transformers,
on a tiny config."""

from __future__ import annotations

import inspect

import pytest
import torch

from wam.errors import ConfigError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms import VARIANTS, PolicyModelConfig, build_paradigm
from wam.paradigms.base import Paradigm, missing_members
from wam.paradigms.inverse_dynamics import ACTION_MASK as IDM_ACTION_MASK
from wam.paradigms.representation import MASK as REPR_MASK
from wam.paradigms.settings import LatentFrameConfig

# settings that change a strategy's groups or its acting, contract-tested as rows of their own (a row:
# (paradigm, integration, setting), the setting a key of SETTINGS, "" = the defaults)
SETTINGS: dict[str, dict] = {
    "": {},
    "value": {"latent_frame": LatentFrameConfig(value_frame=True)},
    "state+value+best_of_2": {"latent_frame": LatentFrameConfig(state_frames=True, value_frame=True,
                                                                value_candidates=2)}}
ROWS = [(name, integration, "") for name, integration in VARIANTS] + [
    ("joint", "latent_frame", "value"), ("joint", "latent_frame", "state+value+best_of_2")]
COMBOS = [(name, integration, setting, mot) for name, integration, setting in ROWS for mot in (False, True)]
VIDEO = [(n, i, s) for n, i, s in ROWS if VARIANTS[n, i].video and "state" not in s]  # state frames: no state token


def tokenizer() -> FrameAutoencoder:
    torch.manual_seed(0)
    return FrameAutoencoder(TokenizerConfig(image_size=32, latent_channels=4, base_channels=8, downsample=8))


def tiny(name: str, mot: bool = False, integration: str = "tokens", **kw):
    kw = {"obs": (-1, 0), "future": (2, 4), "chunk": 3, "sample_steps": 2, **kw}
    cfg = PolicyModelConfig(backbone=BackboneConfig(depth=2, width=64, mot=mot), integration=integration, **kw)
    torch.manual_seed(0)
    return build_paradigm(name, cfg, tokenizer())


def perturbed(p, scale: float):
    """Move trainable weights off adaLN-Zero's init, so outputs depend on every group they see."""
    with torch.no_grad():
        for q in p.parameters():
            if q.requires_grad:
                q.add_(scale * torch.randn_like(q))
    return p


def batch(b: int = 4, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs.latent": torch.randn(b, 2, 4, 4, 4, generator=g), "obs.state": torch.randn(b, 2, 4, generator=g),
            "future.latent": torch.randn(b, 2, 4, 4, 4, generator=g),
            "future_is_pad": torch.zeros(b, 2, dtype=torch.bool),
            "action": torch.rand(b, 3, 4, generator=g) * 2 - 1,
            "action_is_pad": torch.tensor([[False, False, True]] * b),
            "text_emb": torch.randn(b, 384, generator=g)}


def full_batch(b: int = 4, seed: int = 1) -> dict:
    """`batch` and what the setting rows read too: the future states, each window's frame and episode length."""
    g = torch.Generator().manual_seed(seed + 100)
    return {**batch(b, seed), "future.state": torch.randn(b, 2, 4, generator=g),
            "frame_index": torch.arange(b) * 3, "episode_length": torch.full((b,), 10)}


def row(name: str, integration: str, setting: str, **kw):
    """A row's tiny paradigm and its batch maker."""
    return tiny(name, integration=integration, **SETTINGS[setting], **kw), (full_batch if setting else batch)


def ids(rows) -> list[str]:
    return ["-".join(str(x) for x in r if x != "") for r in rows]


@pytest.mark.parametrize("name,integration,setting,mot", COMBOS, ids=ids(COMBOS))
def test_loss_gradients_and_shapes(name, integration, setting, mot):
    p, batch = row(name, integration, setting, mot=mot)
    loss, metrics = p.loss(batch())
    assert torch.isfinite(loss) and loss.item() > 0 and "action_loss" in metrics
    loss.backward()
    trainable = {n: q for n, q in p.named_parameters() if q.requires_grad}
    assert not any(".tokenizer." in n or n.startswith("parts.tokenizer") for n in trainable)
    # the "no instruction" token only learns where text is dropped (the world model's guidance)
    missing = [n for n, q in trainable.items() if q.grad is None and n != "parts.text.null"]
    assert not missing, missing
    chunk = p.act(batch(), generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (4, 3, 4) and torch.isfinite(chunk).all()
    future = p.imagine(batch())
    assert (future is None) == (not p.video)
    if future is not None:
        assert future.shape == (4, 2, 4, 4, 4)


@pytest.mark.parametrize("name,integration,setting", ROWS, ids=ids(ROWS))
def test_loss_falls_when_overfitting_one_batch(name, integration, setting):
    p, batch = row(name, integration, setting)
    data = batch()
    opt = torch.optim.AdamW([q for q in p.parameters() if q.requires_grad], lr=3e-3)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    first = p.loss(data, generator=g())[0].item()
    for _ in range(60):
        loss = p.loss(data, generator=g())[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert p.loss(data, generator=g())[0].item() < 0.5 * first


@pytest.mark.parametrize("name,integration,setting", ROWS, ids=ids(ROWS))
def test_a_training_step_under_bf16_autocast(name, integration, setting):
    """The trainer's default (optim.bf16): matmuls autocast to bfloat16 on the CPU. Every latent-action
    code is marked dead first, so the codebook restart runs too (it broke under autocast)."""
    p, batch = row(name, integration, setting)
    for m in p.modules():
        if isinstance(getattr(m, "usage_ema", None), torch.Tensor):
            m.usage_ema.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = p.loss(batch())
        chunk = p.act(batch(), generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(chunk).all() and chunk.shape == (4, 3, 4)
    assert all(q.dtype == torch.float32 for q in p.parameters())


@pytest.mark.parametrize("name,integration,setting", ROWS, ids=ids(ROWS))
def test_state_dict_round_trip_gives_identical_actions(name, integration, setting):
    (a, batch), (b, _) = row(name, integration, setting), row(name, integration, setting)
    perturbed(a, 0.01)
    b.load_state_dict(a.state_dict())
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(a.act(batch(), generator=g()), b.act(batch(), generator=g()))


@pytest.mark.parametrize("name,integration,setting", ROWS, ids=ids(ROWS))
def test_declared_capabilities_hold(name, integration, setting):
    """What `wam variants` lists is what the strategy does: a video head, a future left by `act`, acting
    from a given future (and depending on it), subgoal offsets."""
    cls = VARIANTS[name, integration]
    p, batch = row(name, integration, setting)
    perturbed(p, 0.05)
    if integration == "latent_actions":  # the frozen LAM stands for a pretrained one: a codebook spread over pairs
        p.lam.seed_codebook(torch.cat([batch()["obs.latent"][:, -1:], batch()["future.latent"]], 1))
    assert_capabilities(cls, p, batch)


def test_planning_declared_capabilities_hold():
    """The acting-only `planning` row (built by `wam plan`, not `wam train`) keeps the same contract."""
    from tests.paradigms.test_planning import batch as plan_batch, tiny_planner
    from wam.paradigms import PLANNERS

    assert_capabilities(PLANNERS["planning", "tokens"], tiny_planner(), plan_batch)


def assert_capabilities(cls: type, p, batch) -> None:
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert (p.imagine(batch(), generator=g()) is not None) == cls.video
    getattr(p, "reset", lambda: None)()
    p.last_future = None
    p.act(batch(), generator=g())
    assert (p.last_future is not None) == cls.imagines_when_acting
    real = batch()["future.latent"]
    if cls.acts_from_future:
        a, b = p.act(batch(), generator=g(), given_future=real), p.act(batch(), generator=g(), given_future=real + 1)
        assert not torch.allclose(a, b, atol=1e-4)
    else:
        with pytest.raises(ConfigError, match="does not act from a future"):
            p.act(batch(), generator=g(), given_future=real)
    assert hasattr(p, "training_offsets") == cls.subgoal_offsets
    assert ("prefix" in inspect.signature(p.act).parameters) == cls.keeps_prefix  # the policy trusts the flag
    if cls.keeps_prefix:  # real-time chunking: the committed actions come back as given
        prefix = p.act(batch(), generator=g())[:, :2].clamp(-0.5, 0.5) + 0.25  # (B, 2, Da), not what it would sample
        assert torch.allclose(p.act(batch(), generator=g(), prefix=prefix)[:, :2], prefix, atol=1e-5)
    assert not missing_members(p) and "given_future" in inspect.signature(p.act).parameters  # one signature


def test_representation_acts_the_same_without_future_tokens():
    """Fast-WAM's claim made exact: actions never see the future, so dropping it changes nothing."""
    p = perturbed(tiny("representation"), 0.05)
    data = batch()
    x, t = torch.randn(4, 3, 4), torch.full((4,), 0.5)
    alone = p.parts.run(data, REPR_MASK, action=(x, t))["action"]
    with_future = p.parts.run(data, REPR_MASK, future=(torch.randn(4, 2, 4, 4, 4), t), action=(x, t))["action"]
    assert torch.allclose(alone, with_future, atol=1e-5)


def test_representation_imagines_beside_noisy_actions_as_trained():
    """In training the future always attends to noisy action tokens at some flow time; `imagine` must not
    take a path never trained (the future alone): every backbone pass it makes holds both groups."""
    p = perturbed(tiny("representation"), 0.05)
    seen: list[tuple[str, ...]] = []
    p.parts.backbone.register_forward_pre_hook(lambda m, args: seen.append(tuple(sorted(g.name for g in args[0]))))
    future = p.imagine(batch(), generator=torch.Generator().manual_seed(0))
    assert future.shape == (4, 2, 4, 4, 4)
    assert seen and all({"future", "action"} <= set(names) for names in seen), seen


@pytest.mark.parametrize("name", ["inverse_dynamics", "future_conditioned"])
def test_acting_uses_the_given_future(name):
    p = perturbed(tiny(name), 0.05)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    real = batch()["future.latent"]
    a = p.act(batch(), generator=g(), given_future=real)
    b = p.act(batch(), generator=g(), given_future=real + 1)
    assert not torch.allclose(a, b)


def test_inverse_dynamics_actions_never_read_the_instruction():
    """UniPi/AVDC: the action head maps (frames now, frames then, proprio) to actions. Another instruction
    with the same frames gives the same actions; the future-conditioned policy's actions do change."""
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    other = batch()
    other["text_emb"] = torch.randn(other["text_emb"].shape, generator=torch.Generator().manual_seed(9))
    real = batch()["future.latent"]
    idm, fc = perturbed(tiny("inverse_dynamics"), 0.05), perturbed(tiny("future_conditioned"), 0.05)
    same = idm.act(batch(), generator=g(), given_future=real), idm.act(other, generator=g(), given_future=real)
    assert torch.allclose(*same, atol=1e-5)
    changed = fc.act(batch(), generator=g(), given_future=real), fc.act(other, generator=g(), given_future=real)
    assert not torch.allclose(*changed, atol=1e-3)
    assert "text" not in IDM_ACTION_MASK.reachable(["text", "obs", "state", "future", "action"])["action"]


@pytest.mark.parametrize("name", ["inverse_dynamics", "future_conditioned"])
def test_imagining_uses_the_instruction(name):
    """The video pass (the world model) is instruction-conditioned in both: only the action pass differs."""
    p, other = perturbed(tiny(name), 0.05), batch()
    other["text_emb"] = other["text_emb"] + 1
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert not torch.allclose(p.imagine(batch(), generator=g()), p.imagine(other, generator=g()), atol=1e-3)


@pytest.mark.parametrize("name,integration,setting", VIDEO, ids=ids(VIDEO))
def test_world_model_checkpoint_initialises_the_shared_parts(name, integration, setting):
    tok = tokenizer()
    wm = perturbed(VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=2, width=64), obs=(-1, 0),
                                                    future=(2, 4)), tok), 0.05)  # unlike the policy's fresh init
    p, _ = row(name, integration, setting)
    result = p.parts.load_world(wm.state_dict())
    assert not result.unexpected_keys
    # every world-model weight lands (the same tensors), only the policy's own embedders start fresh
    own = {k.split(".")[0] for k in result.missing_keys}
    assert own <= {"state_in", "action_io"}, own
    assert ("state_in" in own) == (integration != "latent_actions")  # latent actions: no proprio token, as pretrained
    parts = p.parts.state_dict()
    assert all(torch.equal(parts[k], v) for k, v in wm.state_dict().items())
    assert ("action_io" in own) == (p.parts.action_io is not None)


def test_unknown_paradigm_is_refused():
    with pytest.raises(ConfigError, match="choose one of joint, representation"):
        build_paradigm("telepathy", PolicyModelConfig(), tokenizer())


def test_missing_members_names_what_is_not_a_paradigm():
    """The contract check the tests use, on every Python (3.12's `isinstance` on a runtime protocol missed
    nn.Module submodules, and failed every variant on a GPU machine's Python 3.12)."""
    p, _ = row("joint", "tokens", "")
    assert missing_members(p) == []
    assert missing_members(torch.nn.Linear(1, 1)) == [*Paradigm.__annotations__, "loss", "act", "imagine", "reset"]
