"""ingest + VideoMemory: clip search, embeddings from one decoding pass, cache reuse, transcripts."""

import json
import subprocess
import sys

import av
import numpy as np
import pytest

import foveate.memory.video_memory as vm
from foveate.memory import IngestConfig, ingest, load_embedder
from foveate.memory.transcript import parse_subtitles


def test_search_returns_sorted_spans_that_map_to_clips(moving_square_video, tiny_embedder_spec):
    mem = ingest(moving_square_video.path, embedder=tiny_embedder_spec, config=IngestConfig(clip_seconds=1.0))
    assert [(c.start_seconds, c.end_seconds) for c in mem.clips] == [(float(i), float(i + 1)) for i in range(6)]
    hits = mem.search("a red square", k=4)
    assert len(hits) == 4 and len({h.clip_id for h in hits}) == 4
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    query = load_embedder(tiny_embedder_spec).embed_texts(["a red square"])[0]
    expected = np.argsort(-(np.asarray(mem.clip_embeddings) @ query))[:4]
    assert [h.clip_id for h in hits] == list(expected)
    for h in hits:
        clip = mem.clips[h.clip_id]
        assert (h.start_seconds, h.end_seconds, h.source) == (clip.start_seconds, clip.end_seconds, "clip")
    assert len(mem.search("anything", k=100)) == 6
    assert max(mem.clip_thumbnail(hits[0].clip_id).size) == 96


def test_clip_embeddings_are_the_mean_of_the_sampled_frames(moving_square_video, tiny_embedder_spec):
    config = IngestConfig(clip_seconds=1.0, frames_per_clip=1)
    mem = ingest(moving_square_video.path, embedder=tiny_embedder_spec, config=config)
    emb = load_embedder(tiny_embedder_spec)
    # One sample per clip at its centre (0.5, 1.5, ...): the frame shown then, decoded independently by seeking.
    frames = mem.frames_at([c.start_seconds + 0.5 for c in mem.clips], max_side=config.embed_max_side)
    np.testing.assert_allclose(mem.clip_embeddings, emb.embed_images(frames), atol=2e-3)
    saved = np.load(
        mem.cache_dir / next(p.name for p in mem.cache_dir.glob("clips-*")) / "embeddings.npy", allow_pickle=False
    )
    assert saved.shape == (6, 64) and saved.dtype == np.float32
    clips_json = json.loads(next(mem.cache_dir.glob("clips-*/clips.json")).read_text())
    assert clips_json["clips"][2] == {"clip_id": 2, "start_seconds": 2.0, "end_seconds": 3.0}


def _best_frame_ranking(mem, emb, query: str) -> list[int]:
    """Clips ranked by their best row of the index (their best sampled frame) against ``query``, by brute force."""
    rows = np.asarray(mem.clip_embeddings) @ emb.embed_texts([query])[0]
    return list(np.argsort(-rows.reshape(len(mem.clips), -1).max(axis=1), kind="stable"))


def test_max_pooling_indexes_every_frame_and_scores_a_clip_by_its_best(moving_square_video, tiny_embedder_spec):
    emb = load_embedder(tiny_embedder_spec)
    config = IngestConfig(clip_seconds=1.0, frames_per_clip=2, clip_pooling="max")
    mem = ingest(moving_square_video.path, embedder=emb, config=config)
    assert mem.clip_embeddings.shape == (12, 64) and config.rows_per_clip == 2
    mean = ingest(moving_square_video.path, embedder=emb, config=config.model_copy(update={"clip_pooling": "mean"}))
    assert mean.cache_dir == mem.cache_dir and mean.built_parts  # another part of the same entry
    np.testing.assert_allclose(  # the mean clip vector is the normalised mean of the rows max pooling keeps
        mean.clip_embeddings,
        np.asarray(mem.clip_embeddings).reshape(6, 2, 64).mean(1)
        / np.linalg.norm(np.asarray(mem.clip_embeddings).reshape(6, 2, 64).mean(1), axis=1, keepdims=True),
        atol=1e-5,
    )
    # each row is one sampled frame's embedding (0.25 s and 0.75 s into each clip)
    frames = mem.frames_at([0.25, 0.75, 3.25, 3.75], max_side=config.embed_max_side)
    np.testing.assert_allclose(np.asarray(mem.clip_embeddings)[[0, 1, 6, 7]], emb.embed_images(frames), atol=2e-2)
    hits = mem.search("a red square", k=4)
    assert len({h.clip_id for h in hits}) == 4
    assert [h.clip_id for h in hits] == _best_frame_ranking(mem, emb, "a red square")[:4]
    rows = np.asarray(mem.clip_embeddings) @ emb.embed_texts(["a red square"])[0]
    np.testing.assert_allclose(
        [h.score for h in hits], [rows[2 * h.clip_id : 2 * h.clip_id + 2].max() for h in hits], atol=1e-5
    )
    assert len(mem.search("anything", k=100)) == 6  # every clip once, not every row
    again = ingest(moving_square_video.path, embedder=emb, config=config)
    assert again.built_parts == () and [h.clip_id for h in again.search("a red square", k=4)] == [
        h.clip_id for h in hits
    ]


def _index_video(tmp_path):
    """20 s at 10 fps, a keyframe every 2.5 s; frame i is one flat colour encoding i (red: i % 20, blue: i // 20)."""
    from tests.fixtures.videos import H, W, make_video

    def frame(i: int) -> np.ndarray:
        return np.full((H, W, 3), (12 * (i % 20), 128, 24 * (i // 20)), np.uint8)

    return make_video(tmp_path / "index.mp4", frame, 10, n_frames=200, gop=25)


def _thumb_frame(mem, clip: int) -> int:
    """Which frame a clip's thumbnail shows, read back from its colour."""
    rgb = np.asarray(mem.clip_thumbnail(clip)).reshape(-1, 3).mean(0)
    return int(round(rgb[0] / 12)) + 20 * int(round(rgb[2] / 24))


def test_keyframe_clip_frames_decode_only_keyframes_and_take_the_one_at_or_before(tmp_path, tiny_embedder_spec):
    path = _index_video(tmp_path)
    emb = load_embedder(tiny_embedder_spec)
    keyed = ingest(path, cache_root=tmp_path / "c", embedder=emb, config=IngestConfig(clip_frames="keyframes"))
    decoded = ingest(path, cache_root=tmp_path / "c", embedder=emb, config=IngestConfig(clip_frames="decoded"))
    assert (keyed.clip_frame_source, decoded.clip_frame_source) == ("keyframes", "decoded")
    # 4-s clips sampled at 1 and 3 s into each: the keyframes at or before those times (every 25 frames)
    # and, decoded, the frames at those times.
    assert [_thumb_frame(keyed, c) for c in range(5)] == [0, 50, 75, 125, 150]
    assert [_thumb_frame(decoded, c) for c in range(5)] == [10, 50, 90, 130, 170]
    expected = emb.embed_images(keyed.frames_at([0.0, 2.5], max_side=224)).mean(0)  # clip 0's two keyframes
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(keyed.clip_embeddings[0], expected, atol=2e-2)
    # auto: a short video is decoded; a long one with keyframes this close takes them; sparse keyframes are decoded
    assert ingest(path, cache_root=tmp_path / "c", embedder=emb).clip_frame_source == "decoded"
    auto = IngestConfig(keyframe_clips_min_seconds=10)
    assert ingest(path, cache_root=tmp_path / "c", embedder=emb, config=auto).clip_frame_source == "keyframes"
    sparse = IngestConfig(keyframe_clips_min_seconds=10, keyframe_clips_max_gap_seconds=2.0)
    assert ingest(path, cache_root=tmp_path / "c", embedder=emb, config=sparse).clip_frame_source == "decoded"


def test_coarse_keyframes_take_the_first_after_each_cut_and_spread_the_rest():
    from foveate.memory.keyframe_embeddings import coarse_keyframe_picker

    take = coarse_keyframe_picker(100.0, 10, cuts_seconds=[70.0, 33.5])
    taken = [t for t in range(100) if take(float(t))]
    assert taken == [0, 13, 26, 34, 47, 60, 70, 83, 96]  # 2 cut slots, 8 evenly spread ones every 12.5 s


def test_keyframes_decode_alike_by_seeks_and_in_one_pass(tmp_path):
    """A few keyframes are a seek each, many one pass: the same frames, each the first keyframe at or after its
    time, in the order asked (repeats and times between keyframes included)."""
    from foveate.memory.keyframe_embeddings import decode_keyframes
    from foveate.memory.probe import probe

    info = probe(_index_video(tmp_path))
    times = [17.5, 0.0, 5.0, 5.0, 12.5, 2.4, 19.9]  # keyframes every 2.5 s; 2.4 -> 2.5; past the last -> None
    by_seek = decode_keyframes(info, times, (32, 24), seek_each_max=len(times))
    in_pass = decode_keyframes(info, times, (32, 24), seek_each_max=0)
    assert [f is None for f in by_seek] == [f is None for f in in_pass] == [False] * 6 + [True]
    for a, b in zip(by_seek[:6], in_pass[:6]):
        np.testing.assert_array_equal(a, b)
    red = [int(round(f[..., 0].mean() / 12)) for f in in_pass[:6]]  # frame index % 20
    assert red == [(i * 25) % 20 for i in (7, 0, 2, 2, 5, 1)]


def test_a_coarse_clip_index_embeds_the_keyframes_where_searches_land(tmp_path, tiny_embedder_spec):
    path = _index_video(tmp_path)  # 20 s, a keyframe every 2.5 s
    emb = load_embedder(tiny_embedder_spec)
    full = ingest(path, cache_root=tmp_path / "full", embedder=emb, config=IngestConfig(clip_frames="keyframes"))
    config = IngestConfig(clip_frames="keyframes", embed_max_frames=2)
    coarse = ingest(path, cache_root=tmp_path / "c", embedder=emb, config=config)
    assert full.keyframe_embeddings.embedded.all() and len(full.keyframe_embeddings.times) == 8
    first = np.flatnonzero(coarse.keyframe_embeddings.embedded)
    assert len(first) == 2 and first[0] == 0
    # before any search, a clip sampling an unembedded keyframe takes the nearest embedded one's vector
    own = coarse.keyframe_embeddings.picked.reshape(5, 2)  # the keyframes each clip samples
    stale = [c for c in range(5) if not coarse.keyframe_embeddings.embedded[own[c]].all()]
    assert len(stale) >= 3
    for c in stale:
        assert not np.allclose(coarse.clip_embeddings[c], full.clip_embeddings[c], atol=1e-3)
    coarse.search("a colour", k=5, refine=False)
    assert (np.flatnonzero(coarse.keyframe_embeddings.embedded) == first).all()  # not refined when told not to
    hits = coarse.search("a colour", k=1)
    refined = coarse.keyframe_embeddings.embedded
    assert refined.sum() > 2  # the hit's keyframes, and those its coarse embedding stood for
    for h in hits:  # the clips returned are scored on their own keyframes
        np.testing.assert_allclose(coarse.clip_embeddings[h.clip_id], full.clip_embeddings[h.clip_id], atol=1e-4)
        assert [_thumb_frame(coarse, h.clip_id)] == [_thumb_frame(full, h.clip_id)]
    # what a search embedded is in the cache: another process starts from it
    again = ingest(path, cache_root=tmp_path / "c", embedder=emb, config=config)
    assert again.built_parts == () and (again.keyframe_embeddings.embedded == refined).all()
    # an ingest that wants every keyframe (what `foveate index` does) completes it in place
    fresh = ingest(path, cache_root=tmp_path / "c2", embedder=emb, config=config)
    assert fresh.keyframe_embeddings.embedded.sum() == 2
    whole = ingest(path, cache_root=tmp_path / "c2", embedder=emb, config=IngestConfig(clip_frames="keyframes"))
    assert whole.built_parts == (next(whole.cache_dir.glob("clips-*")).name,)  # the same part, completed
    assert whole.keyframe_embeddings.embedded.all()
    np.testing.assert_allclose(whole.clip_embeddings, full.clip_embeddings, atol=1e-4)
    assert [h.clip_id for h in whole.search("green", k=3)] == [h.clip_id for h in full.search("green", k=3)]
    assert [_thumb_frame(whole, c) for c in range(5)] == [_thumb_frame(full, c) for c in range(5)]


def test_a_coarse_max_pooled_index_refines_the_rows_of_the_clips_it_returns(tmp_path, tiny_embedder_spec):
    path = _index_video(tmp_path)
    emb = load_embedder(tiny_embedder_spec)
    full_config = IngestConfig(clip_frames="keyframes", clip_pooling="max")
    full = ingest(path, cache_root=tmp_path / "full", embedder=emb, config=full_config)
    coarse = ingest(
        path, cache_root=tmp_path / "c", embedder=emb, config=full_config.model_copy(update={"embed_max_frames": 2})
    )
    assert full.clip_embeddings.shape == coarse.clip_embeddings.shape == (10, 64)  # 5 clips x 2 frames
    hits = coarse.search("a colour", k=2)
    assert coarse.keyframe_embeddings.embedded.sum() > 2
    for h in hits:  # the clips returned are scored on their own keyframes, row by row
        rows = slice(2 * h.clip_id, 2 * h.clip_id + 2)
        np.testing.assert_allclose(coarse.clip_embeddings[rows], full.clip_embeddings[rows], atol=1e-4)
    whole = ingest(path, cache_root=tmp_path / "c", embedder=emb, config=full_config)
    np.testing.assert_allclose(whole.clip_embeddings, full.clip_embeddings, atol=1e-4)
    assert [h.clip_id for h in whole.search("green", k=3)] == _best_frame_ranking(full, emb, "green")[:3]


def test_ask_builds_the_first_answer_index_with_the_configured_budget():
    from typer.main import get_command

    from foveate.cli import app
    from foveate.memory.config import FIRST_ANSWER_MAX_FRAMES

    ask = get_command(app).commands["ask"]
    default = next(p.default for p in ask.params if p.name == "embed_max_frames")
    assert default == FIRST_ANSWER_MAX_FRAMES  # kept literal in the CLI, which does not import pydantic models


def test_second_ingest_is_a_cache_hit_without_decoding(moving_square_video, tiny_embedder_spec, monkeypatch):
    first = ingest(moving_square_video.path, embedder=tiny_embedder_spec)
    assert any(p.startswith("overview-") for p in first.built_parts) and any(
        p.startswith("clips-") for p in first.built_parts
    )
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.cache_dir.iterdir()}

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(vm, "build_overview", no_decoding)
    monkeypatch.setattr(vm, "embed_clips", no_decoding)
    again = ingest(moving_square_video.path, embedder=tiny_embedder_spec)
    assert again.built_parts == ()
    assert {p.name: p.stat().st_mtime_ns for p in again.cache_dir.iterdir()} == mtimes
    assert [h.clip_id for h in again.search("square", 3)] == [h.clip_id for h in first.search("square", 3)]


def test_new_embedder_rebuilds_only_the_clip_index(moving_square_video, tiny_embedder_spec, tmp_path):
    from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder

    first = ingest(moving_square_video.path, embedder=tiny_embedder_spec)
    other = build_tiny_embedder(tmp_path / "other", seed=1)
    second = ingest(moving_square_video.path, embedder=f"openclip:{other}")
    assert len(second.built_parts) == 1 and second.built_parts[0].startswith("clips-")
    parts = sorted(
        p.name.split("-")[0] for p in first.cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    assert parts == ["clips", "clips", "overview"]
    rebuilt = ingest(moving_square_video.path, embedder=tiny_embedder_spec, config=IngestConfig(bin_seconds=1.0))
    assert [p.split("-")[0] for p in rebuilt.built_parts] == ["overview"]  # clip params unchanged: index reused


def test_overview_only_memory(cuts_video):
    mem = ingest(cuts_video.path, embedder=None)
    assert not mem.has_clip_index and mem.search("anything") == [] and mem.clip_embeddings is None
    assert len(mem.clips) == 3 and mem.overview.motion_source == "motion_vectors"
    assert mem.clip_thumbnail(2).size[0] > 0  # falls back to the nearest keyframe thumbnail
    with pytest.raises(IndexError):
        mem.clip_thumbnail(3)


def test_progress_reports_the_embedding_stage(cuts_video, tiny_embedder_spec, tmp_path):
    seen = []
    ingest(
        cuts_video.path,
        cache_root=tmp_path / "c",
        embedder=tiny_embedder_spec,
        progress=lambda s, f: seen.append((s, f)),
    )
    embed = [f for s, f in seen if s == "embed"]
    assert embed and embed[-1] == pytest.approx(1.0) and embed == sorted(embed)
    assert (tmp_path / "c").is_dir() and len(list((tmp_path / "c").iterdir())) == 1  # cache_root= honoured


def test_two_processes_index_the_same_video(cuts_video, tiny_embedder_spec, tmp_path):
    code = (
        "import sys; from foveate.memory import ingest; m = ingest(sys.argv[1], embedder=sys.argv[2]); "
        "print(len(m.search('x', 2)))"
    )
    env = {**__import__("os").environ, "FOVEATE_CACHE": str(tmp_path / "shared-cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cuts_video.path), tiny_embedder_spec],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(o[0].strip() == "2" for o in outs)
    (video_dir,) = list((tmp_path / "shared-cache").iterdir())
    assert not [p for p in video_dir.iterdir() if p.name.startswith((".tmp", ".stale"))]
    assert len(list(video_dir.glob("clips-*"))) == 1 and len(list(video_dir.glob("overview-*"))) == 1
    mem = ingest(cuts_video.path, cache_root=tmp_path / "shared-cache", embedder=tiny_embedder_spec)
    assert mem.built_parts == () and len(mem.search("x", 2)) == 2


def test_sidecar_transcript_is_searchable(moving_square_video, tiny_embedder_spec, tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(moving_square_video.path.read_bytes())
    video.with_suffix(".srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nthe red square starts <i>moving</i>\n\n"
        "2\n00:00:04,000 --> 00:00:05,000\nnow it goes up\n"
    )
    mem = ingest(video, embedder=tiny_embedder_spec)
    assert mem.has_transcript and [c.text for c in mem.transcript.cues] == [
        "the red square starts moving",
        "now it goes up",
    ]
    hit = mem.search_transcript("goes up", k=1)[0]
    assert (hit.start_seconds, hit.end_seconds, hit.source, hit.text) == (4.0, 5.0, "transcript", "now it goes up")
    assert len(mem.search_transcript("square", k=5)) == 2  # with embeddings every cue gets a score
    lexical = ingest(video, embedder=None)  # no embedder: word overlap alone
    assert [h.text for h in lexical.search_transcript("red square", k=5)] == ["the red square starts moving"]


def test_parse_webvtt_and_srt_edge_cases():
    cues = parse_subtitles(
        "WEBVTT\n\n00:01.000 --> 00:02.000 align:start\n<b>hi</b>\nthere\n\n"
        "1:00:00.500 --> 1:00:01.000\nlate\n\n00:05.000 --> 00:04.000\nbackwards\n"
    )
    assert [(c.start_seconds, c.end_seconds, c.text) for c in cues] == [
        (1.0, 2.0, "hi there"),
        (3600.5, 3601.0, "late"),
    ]


def test_subtitle_stream_in_the_container(tmp_path):
    srt = tmp_path / "s.srt"
    srt.write_text(
        "1\n00:00:00,500 --> 00:00:01,500\nhello <i>world</i>\n\n2\n00:00:01,800 --> 00:00:02,500\nsecond line\n"
    )
    video = tmp_path / "subs.mkv"
    with av.open(str(srt)) as src, av.open(str(video), "w") as out:  # remux the parsed cues as a subtitle stream
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        s = out.add_stream_from_template(src.streams[0])
        for i in range(30):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")))
        out.mux(v.encode())
        for packet in src.demux(src.streams[0]):
            if packet.size:
                packet.stream = s
                out.mux(packet)
    mem = ingest(video, embedder=None)
    assert [(c.start_seconds, c.end_seconds, c.text) for c in mem.transcript.cues] == [
        (0.5, 1.5, "hello world"),
        (1.8, 2.5, "second line"),
    ]
    assert mem.search_transcript("second", 1)[0].start_seconds == 1.8


def test_truncated_stream_indexes_what_it_holds(tmp_path, tiny_embedder_spec):
    from tests.fixtures.videos import make_video

    full = make_video(
        tmp_path / "full.ts",
        lambda i: np.full((48, 64, 3), (i * 5) % 255, np.uint8),
        fps=10,
        size=(64, 48),
        n_frames=80,
    )
    half = tmp_path / "half.ts"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    # A transport stream cut in half still demuxes up to the cut: its first half is indexed.
    mem = ingest(half, embedder=tiny_embedder_spec)
    assert 2.0 < mem.duration_seconds < 8.0
    assert mem.has_clip_index and len(mem.clips) >= 1 and mem.clips[-1].end_seconds <= mem.duration_seconds + 1e-6
    np.testing.assert_allclose(np.linalg.norm(mem.clip_embeddings, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("damaged", ["overview.json", "index.faiss", "embeddings.npy"])
def test_a_truncated_cache_file_is_rebuilt(cuts_video, tiny_embedder_spec, tmp_path, caplog, damaged):
    first = ingest(cuts_video.path, cache_root=tmp_path, embedder=tiny_embedder_spec)
    path = next(first.cache_dir.glob(f"*/{damaged}"))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with caplog.at_level("WARNING", logger="foveate.memory.cache"):
        again = ingest(cuts_video.path, cache_root=tmp_path, embedder=tiny_embedder_spec)
    assert "does not load" in caplog.text and path.parent.name in again.built_parts
    assert again.overview.cuts_seconds == first.overview.cuts_seconds
    assert [h.clip_id for h in again.search("a square", 3)] == [h.clip_id for h in first.search("a square", 3)]
