"""FAISS clip index: exact search, IVF past the threshold, atomic save and load."""

import numpy as np
import pytest

from foveate.memory.clip_index import ClipIndex


def _unit(n, d=16, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_flat_search_is_exact_and_sorted():
    vecs = _unit(50)
    index = ClipIndex.build(vecs, np.arange(100, 150))
    assert not index.is_ivf and len(index) == 50 and index.dim == 16
    ids, scores = index.search(vecs[7], 5)
    assert ids[0] == 107 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert list(scores) == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, (vecs @ vecs[7])[ids - 100], atol=1e-5)
    ids, _ = index.search(vecs[0], 500)  # k larger than the index is clamped
    assert sorted(ids) == list(range(100, 150))


def test_ivf_is_used_past_the_threshold_and_finds_itself():
    vecs = _unit(600)
    index = ClipIndex.build(vecs, np.arange(600), ivf_threshold=100)
    assert index.is_ivf
    found = [index.search(vecs[i], 1)[0][0] == i for i in range(0, 600, 20)]
    assert all(found)
    assert not ClipIndex.build(vecs, np.arange(600), ivf_threshold=600).is_ivf


def test_save_load_round_trip_leaves_no_temp_files(tmp_path):
    vecs = _unit(300, seed=1)
    for threshold in (1000, 50):
        index = ClipIndex.build(vecs, np.arange(300), ivf_threshold=threshold)
        path = tmp_path / f"i{threshold}.faiss"
        index.save(path)
        loaded = ClipIndex.load(path)
        assert loaded.is_ivf == index.is_ivf and len(loaded) == 300
        for q in (3, 150, 299):
            a, b = index.search(vecs[q], 4), loaded.search(vecs[q], 4)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_allclose(a[1], b[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i1000.faiss", "i50.faiss"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        ClipIndex.build(np.zeros((0, 8), np.float32), np.zeros(0))
    index = ClipIndex.build(_unit(4, 8), np.arange(4))
    with pytest.raises(ValueError, match="dims"):
        index.search(np.zeros(16, np.float32), 1)
