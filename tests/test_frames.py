"""frames_at / frames_window: shapes, content, order, rotation, one seek per window, range errors."""

import numpy as np
import pytest

import foveate.memory.frames as frames_mod
from foveate.memory.errors import SeekError
from foveate.memory.frames import frames_at, frames_window
from foveate.memory.probe import open_video
from tests.fixtures.videos import colour_of, index_of_colour


def _index_of(frame: np.ndarray) -> int:
    """The generator's frame index of a flat-coloured frame."""
    return index_of_colour(frame.reshape(-1, 3).mean(0))


def test_frames_at_returns_nearest_frames_in_request_order(colour_video):
    times = [2.0, 0.0, 1.02, 3.9, 0.26]
    frames = frames_at(colour_video.path, times, max_side=160)
    assert frames.shape == (5, 120, 160, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == [20, 0, 10, 39, 3]
    assert np.abs(frames[0].reshape(-1, 3).mean(0) - colour_of(20)).max() < 6


def test_frames_window_samples_at_the_rate(colour_video):
    times, frames = frames_window(colour_video.path, 0.5, 1.5, fps=5, max_side=64)
    assert times.dtype == np.float64 and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(times, [0.5, 0.7, 0.9, 1.1, 1.3])
    assert frames.shape == (5, 48, 64, 3) and frames.dtype == np.uint8
    assert [_index_of(f) for f in frames] == [5, 7, 9, 11, 13]


def test_one_seek_per_window(colour_video, monkeypatch):
    seeks = []

    class Counting:
        def __init__(self, container):
            self._c = container

        def __getattr__(self, name):
            return getattr(self._c, name)

        def seek(self, *args, **kwargs):
            seeks.append(args)
            return self._c.seek(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._c.close()

    monkeypatch.setattr(frames_mod, "open_video", lambda p: Counting(open_video(p)))
    frames_window(colour_video.path, 1.0, 3.0, fps=10, max_side=32)
    assert len(seeks) == 1
    seeks.clear()
    frames_at(colour_video.path, [3.5, 0.2, 3.0], max_side=32)  # close together: one group
    assert len(seeks) == 1


def test_rotation_is_applied(rotated_video):
    frame = frames_at(rotated_video.path, [0.5], max_side=160)[0]
    assert frame.shape == (160, 120, 3)  # portrait after a 90 degree turn
    left, right = frame[:, :50].reshape(-1, 3).mean(0), frame[:, -50:].reshape(-1, 3).mean(0)
    assert left[0] > 200 and left[2] < 60  # the red top half turned counter-clockwise to the left
    assert right[2] > 200 and right[0] < 60


def test_variable_frame_rate_times_map_to_the_right_frames(vfr_video):
    pts = vfr_video.notes["pts_seconds"]
    picks = [3, 4, 17, 30]
    frames = frames_at(vfr_video.path, [pts[k] + 0.01 for k in picks], max_side=64)
    assert [_index_of(f) for f in frames] == picks


@pytest.mark.parametrize("times", [[-0.5], [4.5], [1.0, float("nan")]])
def test_out_of_range_times_raise_seek_error(colour_video, times):
    with pytest.raises(SeekError, match="outside the video"):
        frames_at(colour_video.path, times)


def test_bad_windows(colour_video):
    with pytest.raises(SeekError, match="empty window"):
        frames_window(colour_video.path, 2.0, 2.0, fps=1)
    with pytest.raises(SeekError):
        frames_window(colour_video.path, 3.0, 6.0, fps=2)
    with pytest.raises(ValueError):
        frames_window(colour_video.path, 0.0, 1.0, fps=0)


def test_empty_request(colour_video):
    assert frames_at(colour_video.path, [], max_side=64).shape == (0, 48, 64, 3)
