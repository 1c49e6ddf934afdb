"""probe(): metadata, content fingerprints, and one typed error per kind of bad input."""

import shutil

import pytest

from foveate.memory.errors import CorruptVideoError, NoVideoStreamError, VideoOpenError
from foveate.memory.probe import fingerprint, probe


def test_probe_reads_the_synthetic_square(moving_square_video):
    info = probe(moving_square_video.path)
    assert info.duration_seconds == pytest.approx(6.0, abs=0.11)
    assert info.fps == pytest.approx(10.0)
    assert (info.width, info.height, info.codec) == (320, 240, "h264")
    assert not info.has_audio and not info.variable_frame_rate
    assert info.rotation_degrees == 0 and info.subtitle_streams == 0


def test_mpeg4_avi_and_vp8_webm(moving_square_mpeg4, moving_square_vp8):
    assert probe(moving_square_mpeg4.path).codec == "mpeg4"
    assert probe(moving_square_vp8.path).codec == "vp8"


def test_display_matrix_rotation(rotated_video):
    info = probe(rotated_video.path)
    assert info.rotation_degrees == 90
    assert info.display_size == (240, 320)


def test_variable_frame_rate_is_detected(vfr_video, moving_square_video):
    info = probe(vfr_video.path)
    assert info.variable_frame_rate
    assert info.duration_seconds == pytest.approx(vfr_video.duration_seconds, abs=0.2)
    assert not probe(moving_square_video.path).variable_frame_rate


def test_fingerprint_follows_content_not_path(moving_square_video, tmp_path):
    copy = tmp_path / "elsewhere.mp4"
    shutil.copy(moving_square_video.path, copy)
    assert fingerprint(copy) == fingerprint(moving_square_video.path)
    data = bytearray(copy.read_bytes())
    data[10] ^= 0xFF  # the first chunk is always sampled
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(bytes(data))
    assert fingerprint(changed) != fingerprint(copy)


@pytest.mark.parametrize("kind", ["empty", "text", "missing", "directory", "half"])
def test_unreadable_files_raise_video_open_error_naming_the_file(kind, tmp_path, moving_square_video):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a video\n" * 100)
    elif kind == "directory":
        path.mkdir()
    elif kind == "half":  # PyAV writes the moov atom last: half a file has no index
        data = moving_square_video.path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoOpenError) as err:
        probe(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_audio_only_raises_no_video_stream(audio_only_file):
    with pytest.raises(NoVideoStreamError, match="no video stream.*audio"):
        probe(audio_only_file)


def test_garbage_after_a_valid_header_is_a_typed_error(tmp_path, moving_square_video):
    data = bytearray(moving_square_video.path.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 8 : mdat + 4000] = bytes(len(data[mdat + 8 : mdat + 4000]))  # zero the first frames' bytes
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    # The container is intact but the first frames are zeros: the probe decodes them and says so.
    with pytest.raises(CorruptVideoError, match="no frame could be decoded") as err:
        probe(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_real_clip_with_a_180_degree_display_matrix(shared_videos_dir):
    clip = shared_videos_dir / "moviepy" / "fire2.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} missing")
    info = probe(clip)
    assert info.rotation_degrees == 180 and info.has_audio
