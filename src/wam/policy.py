"""The policy: a paradigm wrapped in LeRobot's contract, with normalisation inside.

    policy = policy.to_runtime("cuda", "auto")     # device and precision (wam.runs); default cpu, fp32
    policy.reset()                                   # at the start of every episode
    action = policy.select_action(obs, generator=g)  # (Da,) numpy, from a queue over the chunk
    chunk = policy.predict_action_chunk(obs)         # (Ta, Da) numpy
    actions = policy.act_on_batch(batch)             # (B, Ta, Da) tensor on the policy's device
    loss, metrics = policy.forward(batch)            # training, on WindowDataset batches

Tensors in, tensors out on the policy's device (`act_on_batch`, `forward`; inputs on another device
are moved); numpy only at the environment boundary (`select_action`, `predict_action_chunk` take a
`MetaWorldEnv` observation and return numpy).

Observation history: when the obs offsets reach into the past (e.g. `policy.obs=(-4, 0)`), the policy
keeps the last frames and states it was shown since `reset()` and feeds them at those offsets;
before enough steps have passed, the earliest one is repeated, as training windows repeat an
episode's first frame. A paradigm that imagines during `act` leaves its latents in `last_future`;
with `record_imagination` set, the policy decodes them into `imagined` (Tf, H, W, 3) uint8.

The wrapped module is any paradigm-like one: `cfg` (chunk, obs), `video`, `pixels`, `image_size`,
`loss`, `act`, `last_future`. A WAM paradigm reads tokenizer latents (`pixels = False`); the outside
reference policy (wam.reference) reads the frames themselves, so both act through this one class.

`obs` is a `MetaWorldEnv` observation (the dataset's keys: `observation.images.<camera>` (H, W, 3)
uint8, `observation.state` (Ds,) float) plus `"task"`, the instruction. Proprio states are
standardised with the dataset's mean/std, actions mapped from the dataset's [min, max] to [-1, 1]
and back, so the paradigms only ever see normalised numbers. With `ensemble` (a decay in (0, 1])
every step re-plans and overlapping chunks are averaged with exponential weights (ACT's temporal
ensembling); without it, the first `n_action_steps` actions of each chunk are executed.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import Tensor, nn

from wam.data.frames import resize_frames
from wam.data.windows import ACTION_KEY, STATE_KEY
from wam.errors import WamError
from wam.nn.keypoints import KeypointNet
from wam.paradigms.auxiliary import auxiliary_loss
from wam.runs.device import module_device, resolve_device, to_device
from wam.runs.precision import Precision, choose_precision
from wam.runs.seeding import episode_generator


def history_picks(offsets, available: int) -> list[int]:
    """Indices into a history of `available` frames (oldest first) for observation offsets (<= 0,
    relative to the newest); the earliest frame repeats while the history is short."""
    last = available - 1
    return [max(last + o, 0) for o in offsets]


class Normalizer(nn.Module):
    """State standardisation and action min-max scaling, stored as buffers (saved with the weights)."""

    def __init__(self, stats: dict[str, dict[str, np.ndarray]]):
        super().__init__()
        state, action = stats[STATE_KEY], stats[ACTION_KEY]
        f = lambda v: torch.as_tensor(np.asarray(v, dtype=np.float32).reshape(-1))  # noqa: E731
        self.register_buffer("state_mean", f(state["mean"]))
        self.register_buffer("state_std", f(state["std"]).clamp_min(1e-6))
        self.register_buffer("action_min", f(action["min"]))
        self.register_buffer("action_span", (f(action["max"]) - f(action["min"])).clamp_min(1e-6))

    def state(self, x: Tensor) -> Tensor:
        return (x - self.state_mean) / self.state_std

    def action(self, x: Tensor) -> Tensor:
        return 2 * (x - self.action_min) / self.action_span - 1

    def unaction(self, x: Tensor) -> Tensor:
        return (x.clamp(-1, 1) + 1) / 2 * self.action_span + self.action_min


class WamPolicy(nn.Module):
    """A paradigm (or a paradigm-like module) + normaliser + instruction embeddings, acting through an action queue."""

    def __init__(self, paradigm: nn.Module, stats: dict, image_key: str, text_encoder,
                 n_action_steps: int | None = None, ensemble: float | None = None, source_size: int | None = None,
                 state_names: tuple[str, ...] = (), keypoints: KeypointNet | None = None):
        super().__init__()
        self.paradigm, self.normalizer = paradigm, Normalizer(stats)
        self.keypoints = keypoints  # the pixel stream (policy.keypoints): positions appended to the state
        self.image_key, self.text_encoder = image_key, text_encoder
        self.source_size = source_size  # the dataset's frame size: resized here exactly as in training
        self.state_names = tuple(state_names)  # observation.state's per-dimension names; () = unknown
        self.chunk = paradigm.cfg.chunk
        self.history = 1 - min(paradigm.cfg.obs)  # frames kept for the obs offsets
        self.record_imagination = False
        self.precision = Precision("fp32", "cpu", "default")  # inference precision; set by to_runtime
        self.set_execution(n_action_steps, ensemble)  # also resets the queues

    def set_execution(self, n_action_steps: int | None = None, ensemble: float | None = None) -> None:
        """How chunks are executed: the first `n_action_steps` of each (None: half the chunk), or with
        `ensemble` (a decay > 0) re-planning every step and averaging overlapping chunks."""
        n_action_steps = n_action_steps or max(self.chunk // 2, 1)  # default: execute half a chunk
        if not 1 <= n_action_steps <= self.chunk:
            raise WamError(f"n_action_steps must be in 1..{self.chunk} (the chunk length), got {n_action_steps}")
        if ensemble is not None and not ensemble > 0:
            raise WamError(f"ensemble must be a decay > 0 (or unset: no temporal ensembling), got {ensemble}")
        self.n_action_steps, self.ensemble = n_action_steps, ensemble
        cfg = self.paradigm.cfg  # the paradigm reads them too (hierarchical: how far its cached subgoal is)
        cfg.n_action_steps, cfg.ensemble = n_action_steps, ensemble or 0.0
        self.reset()

    @property
    def device(self) -> torch.device:
        return module_device(self)

    @property
    def view_keys(self) -> list[str]:
        """More cameras the policy reads besides `image_key` (its keypoint detector's `policy.keypoints.views`)."""
        return [] if self.keypoints is None else [f"observation.images.{v}" for v in self.keypoints.cfg.view_list()]

    @property
    def detector_frames(self) -> bool:
        """Whether the keypoint detector reads frames of its own (`obs.detector`): more cameras, or another size
        (`policy.keypoints.image_size`) than the policy's `obs.image`."""
        return self.keypoints is not None and (bool(self.view_keys) or self.keypoints.size != self.paradigm.image_size)

    @property
    def state_dim(self) -> int:
        """Size of the `observation.state` the policy was trained on."""
        return self.normalizer.state_mean.numel()

    @property
    def last_value(self) -> float | None:
        """The value the last chunk's value frame predicted (policy.latent_frame.value_frame), else None."""
        value = getattr(self.paradigm, "last_value", None)
        return None if value is None else round(float(value[0]), 4)

    def to_runtime(self, device: str | torch.device = "cpu", precision: str = "fp32") -> WamPolicy:
        """Move to `device` (a `--device` name or a torch device) and act in `precision` (a `--precision`
        name; `auto` is decided for that device by wam.runs.precision)."""
        device = resolve_device(device) if isinstance(device, str) else device
        self.precision = choose_precision(precision, device, flag="--precision")
        return self.to(device)

    # -- training -----------------------------------------------------------------------------
    def _latents(self, frames: Tensor) -> Tensor:
        """(B, T, 3, H, W) uint8 -> (B, T, C, h, w) normalised latents of the frozen tokenizer."""
        tok = self.paradigm.parts.tokenizer
        with torch.no_grad():
            return tok.normalize(tok.encode(frames))

    def prepare(self, batch: dict) -> dict:
        """A WindowDataset batch -> what a paradigm consumes (latents, normalised numbers, text), on
        the policy's device."""
        device = self.device
        batch = to_device(batch, device)
        out = {"text_emb": batch.get("text_emb", None)}
        if self.paradigm.pixels:  # frames as they are (uint8), for a model with its own image encoder
            out["obs.image"] = batch["obs.image"]
        else:
            out["obs.latent"] = batch.get("obs.latent", None)
            if out["obs.latent"] is None:
                out["obs.latent"] = self._latents(batch["obs.image"])
        if out["text_emb"] is None:
            out["text_emb"] = self.text_encoder.encode(list(batch["task"])).to(device)
        out["obs.state"] = self.with_keypoints(batch, self.normalizer.state(batch["obs.state"]), out["text_emb"])
        if "action" in batch:
            out["action"], out["action_is_pad"] = self.normalizer.action(batch["action"]), batch["action_is_pad"]
        out.update({k: batch[k] for k in ("frame_index", "episode_length") if k in batch})  # the value target's
        if "obs.aux" in batch:  # (B, To, De): the auxiliary head's targets, at the current (last obs) frame
            out["aux.target"] = batch["obs.aux"][:, -1]
        if self.paradigm.video and ("future.latent" in batch or "future.image" in batch):
            out["future.latent"] = batch.get("future.latent", None)
            if out["future.latent"] is None:
                out["future.latent"] = self._latents(batch["future.image"])
            out["future_is_pad"] = batch["future_is_pad"]
            if "future.state" in batch:
                out["future.state"] = self.normalizer.state(batch["future.state"])
        return out

    def with_keypoints(self, batch: dict, state: Tensor, text_emb: Tensor | None = None) -> Tensor:
        """(B, To, Ds) normalised state -> (B, To, Ds + 2K or 3K) with the detector's positions (policy.keypoints):
        the precomputed `obs.keypoints` of training windows, else found in the `obs.image` frames (lifted with the
        lift of the instruction `text_emb` (B, D) names, `policy.keypoints.per_task`)."""
        if self.keypoints is None:
            return state
        found = batch.get("obs.keypoints")
        if found is None:
            wanted = "obs.detector" if self.detector_frames else "obs.image"
            if wanted not in batch:
                raise WamError(f"policy.keypoints reads frames: the batch has neither 'obs.keypoints' nor '{wanted}'")
            found = self.keypoints(batch[wanted], text_emb)  # (B, To, K, 2 V or 3)
        return torch.cat([state, found.flatten(2).to(state.dtype)], -1)

    def forward(self, batch: dict) -> tuple[Tensor, dict]:
        return self.loss(batch)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        """The trainer's entry point (forward, with a noise generator for validation): the paradigm's loss,
        plus the auxiliary targets' (`policy.aux`, wam.paradigms.auxiliary) where the batch holds them."""
        batch = self.prepare(batch)
        loss, metrics = self.paradigm.loss(batch, generator)
        parts = getattr(self.paradigm, "parts", None)
        return auxiliary_loss(parts, batch, loss, metrics) if parts is not None else (loss, metrics)

    # -- acting -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, task: str = "", episode: int = 0,
              generator: torch.Generator | None = None) -> None:
        """A new episode. Its sampling noise comes from `generator`, or with `seed` from
        `episode_generator(seed, task, episode)` (as `PolicyClient.reset` asks a server), else torch's global RNG."""
        self.generator = generator if seed is None else episode_generator(seed, task, episode)
        self._queue: deque[np.ndarray] = deque()
        self._plans: list[tuple[int, np.ndarray]] = []  # (step made, chunk) for ensembling
        self._step = 0
        self._frames: deque[np.ndarray] = deque(maxlen=self.history)  # (H, W, 3) resized, oldest first
        self._states: deque[np.ndarray] = deque(maxlen=self.history)
        self._detector: deque[np.ndarray] = deque(maxlen=self.history)  # (h, w, 3 V): what the keypoint detector reads
        self.imagined: np.ndarray | None = None
        if hasattr(self.paradigm, "reset"):  # a paradigm with test-time state (hierarchical's cached plan)
            self.paradigm.reset()

    def _check_obs(self, obs: dict) -> None:
        size, state = self.paradigm.image_size, obs.get(STATE_KEY)
        if any(obs.get(k) is None for k in (self.image_key, *self.view_keys)) or state is None or "task" not in obs:
            wanted = ", ".join(f"'{k}'" for k in (self.image_key, *self.view_keys, STATE_KEY))
            raise WamError(f"an observation needs {wanted} and 'task'; got {sorted(obs)}")
        for key in (self.image_key, *self.view_keys):
            image = np.asarray(obs[key])
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise WamError(f"'{key}' must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            if image.shape[:2] not in ((size, size), (self.source_size, self.source_size)):
                also = f" (or {self.source_size}x{self.source_size}, resized)" if self.source_size else ""
                raise WamError(f"'{key}' is {image.shape[0]}x{image.shape[1]}; this policy takes {size}x{size}{also}")
        if np.asarray(state).shape != (self.normalizer.state_mean.numel(),):
            raise WamError(f"'{STATE_KEY}' must have shape ({self.normalizer.state_mean.numel()},), "
                           f"got {np.asarray(state).shape}")

    def _remember(self, obs: dict) -> None:
        """Check one observation and append it (resized as the training cache did) to the history."""
        self._check_obs(obs)
        size = self.paradigm.image_size
        self._frames.append(resize_frames(np.asarray(obs[self.image_key])[None], size)[0])
        self._states.append(np.asarray(obs[STATE_KEY], np.float32))
        if self.detector_frames:  # every camera it reads, at its size, as the training cache resized them
            keys, at = (self.image_key, *self.view_keys), self.keypoints.size
            self._detector.append(np.concatenate([resize_frames(np.asarray(obs[k])[None], at)[0] for k in keys], -1))

    def _obs_batch(self, task: str) -> dict:
        """The obs offsets' frames and states from the history (the earliest repeated when short)."""
        picks = history_picks(self.paradigm.cfg.obs, len(self._frames))
        frames = np.stack([self._frames[i] for i in picks])  # (To, H, W, 3)
        image = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        state = torch.from_numpy(np.stack([self._states[i] for i in picks]))
        batch = {"obs.image": image[None], "obs.state": state[None], "task": [task]}
        if self.detector_frames:  # (1, To, 3 V, h, w)
            seen = np.stack([self._detector[i] for i in picks])
            batch["obs.detector"] = torch.from_numpy(np.ascontiguousarray(seen)).permute(0, 3, 1, 2)[None]
        return batch

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict, generator: torch.Generator | None = None,
                             remember: bool = True, prefix: np.ndarray | None = None) -> np.ndarray:
        """(Ta, Da) actions in the dataset's units; `obs` joins the history unless already added.
        `prefix` (P, Da): actions already committed, kept fixed at the chunk's start (real-time
        chunking, where the paradigm supports it)."""
        if remember:
            self._remember(obs)
        return self._act(self._obs_batch(obs["task"]), generator, prefix)

    @torch.no_grad()
    def predict_from_history(self, frames: np.ndarray, states: np.ndarray, task: str,
                             generator: torch.Generator | None = None, prefix: np.ndarray | None = None) -> np.ndarray:
        """(Ta, Da) from the frames (To, H, W, 3) and states (To, Ds) at the obs offsets, oldest first
        (what a remote client sends); the policy's own history is left alone."""
        if np.ndim(frames) != 4 or np.ndim(states) != 2:
            raise WamError(f"expected frames (To, H, W, 3) and states (To, Ds), got shapes {np.shape(frames)} and "
                           f"{np.shape(states)}")
        if self.detector_frames:
            kp = self.keypoints.cfg
            raise WamError(f"this policy's keypoint detector reads frames of its own (policy.keypoints.views={kp.views!r}, "
                           f"image_size={kp.image_size}), which a remote client does not send: run it in-process "
                           f"(`wam eval` without --remote)")
        if len(frames) != len(self.paradigm.cfg.obs) or len(states) != len(frames):
            raise WamError(f"expected {len(self.paradigm.cfg.obs)} frames and states (obs offsets "
                           f"{tuple(self.paradigm.cfg.obs)}), got {len(frames)} and {len(states)}")
        for frame, state in zip(frames, states):
            self._check_obs({self.image_key: frame, STATE_KEY: state, "task": task})
        image = resize_frames(np.asarray(frames), self.paradigm.image_size)  # (To, h, w, 3)
        batch = {"obs.image": torch.from_numpy(np.ascontiguousarray(image)).permute(0, 3, 1, 2)[None],
                 "obs.state": torch.from_numpy(np.asarray(states, np.float32))[None], "task": [task]}
        return self._act(batch, generator, prefix)

    def _act(self, batch: dict, generator: torch.Generator | None, prefix: np.ndarray | None) -> np.ndarray:
        self.imagined = None
        kwargs = {}
        if prefix is not None and len(prefix):
            if not getattr(self.paradigm, "keeps_prefix", False):
                raise WamError(f"the {getattr(self.paradigm, 'name', '?')} paradigm cannot keep committed actions "
                               f"fixed (real-time chunking); use blending")
            p = torch.as_tensor(np.asarray(prefix, np.float32))
            if p.dim() != 2 or p.shape[0] >= self.chunk or p.shape[1] != self.normalizer.action_min.numel():
                raise WamError(f"prefix must be (P, {self.normalizer.action_min.numel()}) with P < {self.chunk}, "
                               f"got {tuple(p.shape)}")
            kwargs["prefix"] = self.normalizer.action(p.to(module_device(self)))[None].clamp(-1, 1)  # (1, P, Da)
        chunk = self.act_on_batch(batch, generator, **kwargs)[0]
        future = getattr(self.paradigm, "last_future", None)
        if self.record_imagination and future is not None:
            tok = self.paradigm.parts.tokenizer
            frames = tok.decode(tok.denormalize(future[0].to(tok.latent_mean.dtype)))  # (Tf, 3, H, W) in [0, 1]
            self.imagined = (frames.float() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return chunk.float().cpu().numpy()

    @torch.no_grad()
    def act_on_batch(self, batch: dict, generator: torch.Generator | None = None, **kwargs) -> Tensor:
        """(B, Ta, Da) actions in the dataset's units, on the policy's device, from a batch of
        `obs.image` (B, To, 3, H, W) uint8, `obs.state` (B, To, Ds) and `task` (or `text_emb`), in the
        policy's precision. A paradigm that imagines leaves its latents in `paradigm.last_future`."""
        self.eval()
        self.paradigm.last_future = None  # a call that does not imagine shows nothing new
        with self.precision.autocast():
            chunk = self.paradigm.act(self.prepare(batch), generator=generator, **kwargs)
        return self.normalizer.unaction(chunk.float())

    def select_action(self, obs: dict, generator: torch.Generator | None = None) -> np.ndarray:
        """The next action: from the queue, re-planning when it is empty (or every step, ensembled).
        Plans draw their noise from `generator`, else from the one `reset(seed, task, episode)` made
        (`wam.runs.seeding.episode_generator`: reproducible rollouts), else from torch's global RNG."""
        generator = generator if generator is not None else self.generator
        self._remember(obs)
        if self.ensemble is None:
            if not self._queue:
                chunk = self.predict_action_chunk(obs, generator=generator, remember=False)
                self._queue.extend(chunk[: self.n_action_steps])
            return self._queue.popleft()
        self._plans = [(s, c) for s, c in self._plans if self._step - s < self.chunk]
        self._plans.append((self._step, self.predict_action_chunk(obs, generator=generator, remember=False)))
        candidates = np.stack([c[self._step - s] for s, c in self._plans])  # oldest first
        weights = np.exp(-self.ensemble * np.arange(len(candidates)))
        self._step += 1
        return (weights[:, None] * candidates).sum(0) / weights.sum()
