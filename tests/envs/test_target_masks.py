"""Discs around the object and goal of Meta-World frames (wam.envs.target_masks), and where they are used."""

from __future__ import annotations

import numpy as np
import pytest

from wam.data.lerobot_format import LeRobotDataset
from wam.envs.collect import CollectConfig, collect
from wam.envs.target_masks import ENV_STATE_KEY, TARGETS, disc_mask, projections
from wam.imagination import TargetDiscs


def test_disc_mask_is_centred_where_asked():
    m = disc_mask(np.array([[4.0, 10.0]]), 16, 0.125)[0, 0]  # radius 2 px around column 4, row 10
    rows, cols = np.nonzero(m.numpy())
    assert abs(rows.mean() + 0.5 - 10) < 0.3 and abs(cols.mean() + 0.5 - 4) < 0.3
    assert m.sum() == 12  # pixel centres within 2 px of (4, 10)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    root = tmp_path_factory.mktemp("push") / "d"
    collect(CollectConfig(tasks="push-v3", episodes=1, out=str(root), image_size=32, workers=1), progress_bar=False)
    return LeRobotDataset(root)


def test_future_discs_follow_the_object_frame_by_frame(pushed):
    """imagine-eval's discs sit on the object's projection in each future frame (the row of that frame, not the
    start's): the puck moves, so a disc taken one frame off would be elsewhere."""
    state = pushed.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]
    length = pushed.episodes[0].length
    moved = np.linalg.norm(state[1:, TARGETS["object"]] - state[:-1, TARGETS["object"]], axis=1)
    frame = int(np.argmax(moved > 1e-3))  # the puck starts moving here
    assert moved.max() > 1e-3 and frame + 16 < length
    got = TargetDiscs(pushed, pushed.video_keys[0], 32)([(0, frame)], (4, 16))[0]
    for name in ("object", "goal"):
        px = projections("push-v3", "corner2", 32, state[[frame + 4, frame + 16]][:, TARGETS[name]])
        assert got[name].shape == (2, 1, 32, 32) and got[name].equal(disc_mask(px, 32, 0.08))
    assert not got["object"][0].equal(got["object"][1])  # the puck moved between the two future frames


def test_dataset_centres_are_each_frames_projections_and_no_stale_goal(pushed):
    from wam.envs.target_masks import dataset_centres

    state = pushed.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]
    got = dataset_centres(pushed, "corner2", 32)  # (N, 2, 2)
    assert got.shape == (len(state), 2, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], projections("push-v3", "corner2", 32, state[:, TARGETS["object"]]), atol=1e-4)
    np.testing.assert_allclose(got[1:, 1], projections("push-v3", "corner2", 32, state[1:, TARGETS["goal"]]), atol=1e-4)
    assert np.isnan(got[0, 1]).all()  # frame 0 shows the previous episode's goal marker


def test_dataset_centres_refuse_data_without_the_meta_world_state(tmp_path):
    from tests.conftest import write_dataset
    from wam.envs.target_masks import dataset_centres
    from wam.errors import ConfigError

    write_dataset(tmp_path / "d", lengths=(5, 6))
    with pytest.raises(ConfigError, match="environment_state"):
        dataset_centres(LeRobotDataset(tmp_path / "d"), "corner2", 32)
