"""wam.data.frames: the frame rows of episodes stored back to back."""

from types import SimpleNamespace

import numpy as np

from wam.data.frames import episode_starts, frame_rows


def _dataset(lengths):
    return SimpleNamespace(episodes=[SimpleNamespace(length=n) for n in lengths])


def test_frame_rows_are_each_episodes_rows_in_the_order_asked():
    ds = _dataset([3, 2, 4])
    assert episode_starts(ds).tolist() == [0, 3, 5, 9]
    assert frame_rows(ds, [2, 0]).tolist() == [5, 6, 7, 8, 0, 1, 2]
    assert frame_rows(ds, [1]).tolist() == [3, 4]


def test_no_episodes_give_no_rows_that_still_index():
    rows = frame_rows(_dataset([3, 2]), [])
    assert rows.shape == (0,) and rows.dtype.kind == "i"
    assert np.arange(5)[rows].shape == (0,)
