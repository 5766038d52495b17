"""The pixel keypoint detector (wam.nn.keypoints): finds small targets to a fraction of a pixel, frozen after fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam.errors import ConfigError
from wam.nn.keypoints import KeypointConfig, KeypointNet, train_keypoints


def dots(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy grey frames with a red (object) and a green (goal) pixel; their centres (n, 2, 2) (column, row)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(80, 120, (n, size, size, 3)).astype(np.uint8)
    at = rng.integers(2, size - 2, (n, 2, 2))
    for i in range(n):
        for k, colour in enumerate(([230, 20, 20], [20, 230, 20])):
            frames[i, at[i, k, 1], at[i, k, 0]] = colour
    return frames, (at + 0.5).astype(np.float32)


def test_the_detector_finds_small_targets_to_a_fraction_of_a_pixel():
    frames, centres = dots(400)
    net = KeypointNet(KeypointConfig(targets="object,goal", steps=150), 32)
    fit = train_keypoints(net, frames, centres, np.arange(300), progress=False)
    assert fit["median_px_error"] < 0.3 and not any(p.requires_grad for p in net.parameters())  # frozen
    found = net(torch.from_numpy(frames[300:]).permute(0, 3, 1, 2))  # (100, 2, 2) in [-1, 1]
    assert found.shape == (100, 2, 2) and found.abs().max() <= 1 and not found.requires_grad
    err = np.abs((found.numpy() + 1) / 2 * 32 - centres[300:])  # held-out frames
    assert np.median(err) < 0.3 and np.quantile(err, 0.95) < 1.0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # acting's autocast leaves the detector in fp32
        assert torch.equal(net(torch.from_numpy(frames[300:]).permute(0, 3, 1, 2)), found)
    untrained = KeypointNet(KeypointConfig(targets="object,goal"), 32)(torch.from_numpy(frames[300:]).permute(0, 3, 1, 2))
    assert np.quantile(np.abs((untrained.numpy() + 1) / 2 * 32 - centres[300:]), 0.95) > 5  # its median can be ~1 px:
    # a random conv already peaks on some saturated target pixels, but it misses many (16-24 px at the 95th, 8 inits)


def test_the_fit_depends_on_its_seed_and_data_only_and_leaves_the_global_rng_alone():
    """Two arms of one matched cell build their detector after different models (different global RNG states):
    with one seed and one dataset they must get the same detector, and the fit must not reseed the arm's RNG."""
    frames, centres = dots(64)
    cfg = KeypointConfig(targets="object,goal", steps=20, batch_size=8)

    def fitted(seed: int, before: int) -> tuple[dict, torch.Tensor]:
        torch.manual_seed(before)  # whatever the arm built before the detector
        net = KeypointNet(cfg, 32)
        state = torch.get_rng_state()
        train_keypoints(net, frames, centres, np.arange(48), seed=seed, progress=False)
        assert torch.equal(torch.get_rng_state(), state)  # the global RNG is where the fit found it
        return {k: v.clone() for k, v in net.state_dict().items()}, net(torch.from_numpy(frames).permute(0, 3, 1, 2))

    a, found_a = fitted(0, before=1)
    b, found_b = fitted(0, before=2)
    c, _ = fitted(1, before=1)
    assert all(torch.equal(a[k], b[k]) for k in a) and torch.equal(found_a, found_b)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_layer_the_fit_cannot_reinitialise_is_refused():
    """A detector layer with weights but no `reset_parameters` would keep its construction-time init, so two arms of
    one seed would get different detectors: the fit refuses it instead."""

    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(3))

    frames, centres = dots(16)
    net = KeypointNet(KeypointConfig(targets="object,goal", steps=2, batch_size=4), 32)
    net.extra = Scale()
    with pytest.raises(TypeError, match="Scale in the keypoint detector has parameters but no reset_parameters"):
        train_keypoints(net, frames, centres, np.arange(8), seed=0, progress=False)


def test_the_position_is_read_around_the_peak_only():
    """A far-off second bump of probability does not pull the position (a global soft-argmax would)."""
    net = KeypointNet(KeypointConfig(targets="goal", window=1), 16)
    logits = torch.full((1, 1, 16 * 16), -5.0)
    logits[0, 0, 3 * 16 + 4] = 6.0  # the peak: column 4, row 3
    logits[0, 0, 3 * 16 + 5] = 6.0  # its neighbour: the position falls between them
    logits[0, 0, 12 * 16:] = 3.0  # broad mass in the bottom rows
    assert torch.allclose(net.locate(logits)[0, 0], torch.tensor([5.0, 3.5]))
    assert logits.softmax(-1)[0, 0, 12 * 16:].sum() > 0.5  # the mass a global soft-argmax would have averaged in


def test_a_missing_target_is_left_out_of_the_loss():
    net = KeypointNet(KeypointConfig(targets="object,goal"), 16)
    frames = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8)
    centres = torch.tensor([[[3.5, 4.5], [float("nan"), float("nan")]], [[8.5, 2.5], [10.5, 11.5]]])
    loss = net.loss(frames, centres)
    logits = net.logits(frames).log_softmax(-1)
    flat = lambda c: int(c[1]) * 16 + int(c[0])  # noqa: E731  (a sigma -> 0 target would be this pixel)
    assert torch.isfinite(loss)
    net.cfg.sigma = 1e-3
    sharp = net.loss(frames, centres)
    expect = -(logits[0, 0, flat(centres[0, 0])] + logits[1, 0, flat(centres[1, 0])] + logits[1, 1, flat(centres[1, 1])]) / 3
    assert sharp.item() == pytest.approx(expect.item(), rel=1e-4)


@pytest.mark.parametrize("field,value,what", [("targets", "object,lid", "comma list"), ("targets", "goal,goal", "distinct"),
                                              ("steps", 0, "steps"), ("sigma", 0.0, "sigma"), ("window", -1, "window"),
                                              ("image_size", -8, "image_size")])
def test_bad_settings_are_refused_with_a_line(field, value, what):
    cfg = KeypointConfig(targets="goal", **{field: value}) if field != "targets" else KeypointConfig(targets=value)
    with pytest.raises(ConfigError, match=what):
        cfg.check()


def test_the_image_size_must_suit_the_coarse_branch():
    with pytest.raises(ConfigError, match="divisible by 4"):
        KeypointNet(KeypointConfig(targets="goal"), 30)


def test_the_lift_recovers_a_smooth_map_from_image_to_world():
    """`world`: a quadratic map fitted from image positions to (standardised) world positions, per target."""
    from wam.nn.keypoints import fit_lift

    rng = np.random.default_rng(0)
    uv = rng.uniform(-1, 1, (500, 2, 2)).astype(np.float32)  # (N, K, 2)
    u, v = uv[..., 0], uv[..., 1]
    world = np.stack([0.5 * u - v, u * v + 0.2, v ** 2], -1)  # (N, K, 3), exactly quadratic
    world[:, 1] *= -1  # the second target maps otherwise
    uv[:10, 0] = np.nan  # frames where the first target is not seen are left out of its fit
    net = KeypointNet(KeypointConfig(targets="object,goal", world=True), 16)
    r2 = fit_lift(net, uv, world, alpha=1e-8)
    assert r2.min() > 0.999
    got = net.lifted(torch.from_numpy(uv[10:])).numpy()
    np.testing.assert_allclose(got, world[10:], atol=1e-3)
    frames = torch.randint(0, 255, (3, 3, 16, 16), dtype=torch.uint8)
    assert net(frames).shape == (3, 2, 3) and torch.allclose(net(frames), net.lifted(net.pixels(frames)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(net(frames), net.lifted(net.pixels(frames))) and net(frames).dtype == torch.float32
    assert "lift" in net.state_dict() and "lift" not in KeypointNet(KeypointConfig(targets="goal"), 16).state_dict()


def test_task_lifts_place_each_task_and_fall_back_to_the_pooled_map():
    """`per_task`: an affine map per instruction, on positions that span a sliver of the image within a task
    (where the pooled quadratic cannot tell them apart), chosen by the instruction's embedding; else pooled."""
    from wam.nn.keypoints import fit_lift, fit_task_lifts

    rng = np.random.default_rng(0)
    tasks = np.repeat([0, 1], 300)  # (N,)
    uv = (rng.normal(0, 0.02, (600, 1, 2)) + np.where(tasks == 0, -0.3, 0.4)[:, None, None]).astype(np.float32)
    z = (uv - uv.reshape(2, 300, 1, 2).mean(1).repeat(300, 0)) / 0.02  # (N, 1, 2), the task's own spread
    slope = np.where(tasks == 0, 1.0, -2.0)[:, None, None]
    height = np.ones_like(z[..., :1]) + tasks[:, None, None]  # a height per task: a pixel means another place
    world = np.concatenate([slope * z[..., :1], z[..., :1] + z[..., 1:], height], -1)  # (N, 1, 3)
    net = KeypointNet(KeypointConfig(targets="goal", world=True, per_task=True), 16)
    pooled_r2 = fit_lift(net, uv, world)
    keys = torch.eye(3, 8)[:2]  # (T, D): two instructions' embeddings
    r2 = fit_task_lifts(net, uv, world, tasks, keys, alpha=1e-6)
    assert r2.min() > 0.999 and pooled_r2.max() < 0.9
    rows = net.task_rows(torch.cat([keys, torch.eye(3, 8)[2:]]) * 3)  # scale does not matter; a third is unknown
    assert rows.tolist() == [0, 1, -1]
    got = net.lifted(torch.from_numpy(uv), torch.from_numpy(tasks)).numpy()
    np.testing.assert_allclose(got, world, atol=2e-3)
    pooled = net.lifted(torch.from_numpy(uv)).numpy()
    np.testing.assert_array_equal(net.lifted(torch.from_numpy(uv), torch.full((600,), -1)).numpy(), pooled)
    frames = torch.randint(0, 255, (2, 4, 3, 16, 16), dtype=torch.uint8)  # (B, To, 3, H, W): one task a batch row
    mixed = net(frames, torch.stack([keys[1], torch.eye(3, 8)[2]]))
    assert torch.equal(mixed[0], net.lifted(net.pixels(frames[0]), torch.ones(4, dtype=torch.long)))
    assert torch.equal(mixed[1], net.lifted(net.pixels(frames[1])))
    fresh = KeypointNet(KeypointConfig(targets="goal", world=True, per_task=True), 16)
    fresh.load_state_dict(net.state_dict())  # the tasks' buffers take the checkpoint's size
    assert torch.equal(fresh(frames, keys[[0, 1]]), net(frames, keys[[0, 1]]))
    with pytest.raises(ConfigError, match="per_task .* needs policy.keypoints.world=true"):
        KeypointConfig(targets="goal", per_task=True).check()


def test_each_view_has_its_own_maps_and_the_positions_are_per_view():
    """`views`: the same convolutions read each camera's frame (stacked on channels, the main camera first); view i's
    maps are read from frame i only, and a target's position is (column, row) in every view."""
    a, ca = dots(400, seed=1)
    b, cb = dots(400, seed=2)  # the second camera sees the targets elsewhere
    frames, centres = np.concatenate([a, b], -1), np.concatenate([ca, cb], -1)  # (N, 32, 32, 6), (N, 2, 4)
    net = KeypointNet(KeypointConfig(targets="object,goal", steps=200, views="corner"), 32)
    assert net.cfg.extra_dims() == 8
    fit = train_keypoints(net, frames, centres, np.arange(300), progress=False)
    found = net(torch.from_numpy(frames[300:]).permute(0, 3, 1, 2))  # (100, 2, 4)
    assert fit["median_px_error"] < 0.5 and found.shape == (100, 2, 4)
    err = np.abs((found.numpy() + 1) / 2 * 32 - centres[300:])
    assert np.median(err[..., :2]) < 0.5 and np.median(err[..., 2:]) < 0.5  # each view's own targets, held out
    swapped = net(torch.from_numpy(np.concatenate([b, a], -1)[300:]).permute(0, 3, 1, 2))
    assert np.median(np.abs((swapped.numpy() + 1) / 2 * 32 - centres[300:])) > 3  # the views are not interchangeable


def test_view_i_is_read_from_frame_i_with_maps_of_its_own():
    """Structure, untrained: view i's logits change with frame i and with view i's output channels only."""
    torch.manual_seed(0)
    net = KeypointNet(KeypointConfig(targets="object,goal", views="corner"), 32)
    k = len(net.cfg.names())
    frames = torch.randint(0, 255, (3, 6, 32, 32), dtype=torch.uint8)  # (B, 3 V, H, W)
    base = net.logits(frames)  # (B, V K, H W)

    def changed(after: torch.Tensor) -> list[bool]:
        return [not torch.allclose(after[:, i * k:(i + 1) * k], base[:, i * k:(i + 1) * k]) for i in range(2)]

    other = frames.clone()
    other[:, 3:] = 255 - other[:, 3:]  # only the second camera's frame
    assert changed(net.logits(other)) == [False, True]
    with torch.no_grad():
        for head in (net.fine[-1], net.coarse[-1]):
            head.weight[k:] += 1.0  # only view 1's maps
    assert changed(net.logits(frames)) == [False, True]


def test_a_second_view_gives_the_lift_the_depth_one_camera_loses():
    """Two pinhole cameras looking at points in a box: from one, the depth along its rays is lost (R^2 well short
    of 1); from both, the pooled lift's quadratic map recovers the position (docs/runs/keypoints/two_view_ceiling.log
    measures the same on Meta-World's cameras)."""
    from wam.nn.keypoints import fit_lift

    rng = np.random.default_rng(0)
    world = rng.uniform(-1, 1, (2000, 1, 3))  # (N, K, 3)

    def camera(points, yaw):  # a camera 4 units away, looking at the origin from angle `yaw`, focal 1
        c, s = np.cos(yaw), np.sin(yaw)
        x, depth = c * points[..., 0] + s * points[..., 1], 4 - (-s * points[..., 0] + c * points[..., 1])
        return np.stack([x / depth, points[..., 2] / depth], -1)  # (N, K, 2)

    one = camera(world, 0.0)
    both = np.concatenate([one, camera(world, np.pi / 2)], -1)  # (N, K, 4)
    r2_one = fit_lift(KeypointNet(KeypointConfig(targets="goal", world=True), 16), one, world, alpha=1e-8)
    net = KeypointNet(KeypointConfig(targets="goal", world=True, views="corner"), 16)
    r2_both = fit_lift(net, both, world, alpha=1e-8)
    assert r2_one[0] < 0.8 and r2_both[0] > 0.97
    assert net.lift.shape == (1, 11, 3)  # 1, then u, v, u^2, v^2, uv of each view


def test_views_need_targets_and_distinct_names():
    with pytest.raises(ConfigError, match="targets"):
        KeypointConfig(views="corner").check()
    with pytest.raises(ConfigError, match="distinct"):
        KeypointConfig(targets="goal", views="corner,corner").check()
