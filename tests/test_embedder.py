"""The OpenCLIP embedder: loading specs, output shape and norm, save/load, offline errors."""

import json

import numpy as np
import pytest

from foveate.memory.embedder import DEFAULT_EMBEDDER, embedder_cache_key, load_embedder
from foveate.memory.errors import EmbedderError


def _frames(n, h=90, w=120, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_tiny_embedder_gives_unit_vectors_of_its_dim(tiny_embedder_spec):
    emb = load_embedder(tiny_embedder_spec)
    assert emb.dim == 64
    images = emb.embed_images(_frames(70))  # more than one batch of 64
    texts = emb.embed_texts(["a red square", "a dog", ""])
    assert images.shape == (70, 64) and images.dtype == np.float32
    assert texts.shape == (3, 64) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(images[0], images[1])  # different frames, different vectors
    assert emb.embed_images(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, 64)
    with pytest.raises(ValueError, match="uint8"):
        emb.embed_images(np.zeros((1, 8, 8, 3), np.float32))


def test_loaded_once_per_process(tiny_embedder_spec):
    assert load_embedder(tiny_embedder_spec) is load_embedder(tiny_embedder_spec)


def test_save_and_load_round_trip_is_identical(tiny_embedder_spec, tmp_path):
    emb = load_embedder(tiny_embedder_spec)
    out = emb.save(tmp_path / "copy")
    cfg = json.loads((out / "open_clip_config.json").read_text())
    assert set(cfg) == {"model_cfg", "preprocess_cfg"} and cfg["model_cfg"]["embed_dim"] == 64
    again = load_embedder(f"openclip:{out}")
    assert again is not emb
    frames = _frames(5, seed=3)
    np.testing.assert_array_equal(again.embed_images(frames), emb.embed_images(frames))
    np.testing.assert_array_equal(again.embed_texts(["a cat on a mat"]), emb.embed_texts(["a cat on a mat"]))


def test_weights_are_read_in_place_or_left_to_open_clip(tiny_embedder_spec, tmp_path):
    """The folder's weights go straight into a fresh model; a file that does not match it is refused untouched."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from foveate.memory.embedder import load_in_place

    emb = load_embedder(tiny_embedder_spec)
    out = emb.save(tmp_path / "copy")
    model = open_clip.create_model(f"local-dir:{out}", load_weights=False)
    assert load_in_place(model, out / "open_clip_model.safetensors")
    for (name, a), b in zip(model.state_dict().items(), emb.model.state_dict().values()):
        assert torch.equal(a, b), name
    before = {k: v.clone() for k, v in model.state_dict().items()}
    partial = dict(list(emb.model.state_dict().items())[:-1])  # one tensor missing
    save_file({k: v.contiguous() for k, v in partial.items()}, tmp_path / "partial.safetensors")
    assert not load_in_place(model, tmp_path / "partial.safetensors")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_different_seed_gives_a_different_model(tiny_embedder_spec, tmp_path):
    from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder

    other = load_embedder(f"openclip:{build_tiny_embedder(tmp_path / 'other', seed=1)}")
    frames = _frames(2)
    assert not np.allclose(other.embed_images(frames), load_embedder(tiny_embedder_spec).embed_images(frames))


def test_resaved_directory_changes_the_cache_key(tiny_embedder_spec, tmp_path):
    emb = load_embedder(tiny_embedder_spec)
    out = emb.save(tmp_path / "m")
    before = embedder_cache_key(f"openclip:{out}")
    emb.save(out)  # same weights, new file: a fine-tuned model re-saved in place looks like this
    assert embedder_cache_key(f"openclip:{out}") != before
    assert embedder_cache_key(DEFAULT_EMBEDDER) == {"spec": DEFAULT_EMBEDDER}


def test_default_spec_offline_is_a_one_line_error(monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors"), str):
        pytest.skip("the default weights are cached on this machine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderError) as err:
        load_embedder(DEFAULT_EMBEDDER)
    message = str(err.value)
    assert "\n" not in message
    assert "--embedder openclip:DIR" in message and "foveate synth models OUT" in message


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("clip:ViT-B-32", "unknown embedder spec"),
        ("openclip:", "unknown embedder spec"),
        ("openclip:/no/such/model/dir", "no such model directory"),
        ("openclip:NoSuchArch/some_tag", "unknown OpenCLIP architecture"),
        ("openclip:ViT-B-32/no_such_tag", "unknown pretrained tag"),
    ],
)
def test_malformed_specs_are_one_line_errors(spec, fragment):
    with pytest.raises(EmbedderError, match=fragment) as err:
        load_embedder(spec)
    assert "\n" not in str(err.value)


def test_directory_without_weights_is_an_error(tiny_embedder_dir, tmp_path):
    (tmp_path / "open_clip_config.json").write_text((tiny_embedder_dir / "open_clip_config.json").read_text())
    with pytest.raises(EmbedderError, match="open_clip_model.safetensors"):
        load_embedder(f"openclip:{tmp_path}")


def test_a_folder_model_reads_its_text_tower_on_the_first_text(tiny_embedder_spec, tmp_path):
    """Indexing holds only the image tower; the first text query reads the rest, with the same result."""
    emb = load_embedder(tiny_embedder_spec)
    frames, text = _frames(3, seed=5), ["a red star moving left"]
    expected_images, expected_texts = emb.embed_images(frames), emb.embed_texts(text)
    lazy = load_embedder(f"openclip:{emb.save(tmp_path / 'lazy')}")
    unread = {n for n, p in lazy._model.named_parameters() if p.is_meta}
    assert unread and all(not n.startswith("visual.") for n in unread)
    assert any(n.startswith("transformer.") for n in unread)
    np.testing.assert_array_equal(lazy.embed_images(frames), expected_images)
    assert {n for n, p in lazy._model.named_parameters() if p.is_meta} == unread  # images need no text tower
    np.testing.assert_array_equal(lazy.embed_texts(text), expected_texts)
    assert not any(p.is_meta for p in lazy._model.parameters())


def test_a_folder_whose_tensors_differ_is_loaded_by_open_clip_whole(tiny_embedder_spec, tmp_path):
    """A file whose tensors are not the model's is not read in place: open_clip loads it, every tower at once."""
    import torch
    from safetensors.torch import load_file, save_file

    emb = load_embedder(tiny_embedder_spec)
    out = emb.save(tmp_path / "extra")
    state = load_file(out / "open_clip_model.safetensors")
    save_file({**state, "unused": torch.zeros(2)}, out / "open_clip_model.safetensors")
    with pytest.raises(EmbedderError, match="cannot load the model"):
        load_embedder(f"openclip:{out}")  # open_clip's strict load names the unexpected key
    save_file({f"module.{k}": v for k, v in state.items()}, out / "open_clip_model.safetensors")
    other = load_embedder(f"openclip:{out}")  # a training wrapper's names: open_clip strips the prefix
    assert not any(p.is_meta for p in other._model.parameters())
    np.testing.assert_array_equal(other.embed_texts(["a dog"]), emb.embed_texts(["a dog"]))


def test_indexing_on_a_cpu_keeps_gpu_kernels_out_of_memory(tiny_embedder_spec):
    """Without a GPU, loading the embedder keeps triton (GPU kernels only, 76 MB) from being imported."""
    import importlib.util
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available() or importlib.util.find_spec("triton") is None:
        pytest.skip("needs a machine without a GPU, with triton installed")
    code = (
        "import sys, numpy as np; from foveate.memory.embedder import load_embedder; "
        f"e = load_embedder({tiny_embedder_spec!r}); e.embed_images(np.zeros((2, 32, 32, 3), np.uint8)); "
        "import torch._dynamo; print('open_clip' in sys.modules, sys.modules.get('triton'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["True", "None"]


def test_resnet_tower_saves_loads_back_and_embeds_like_the_vit(tmp_path):
    from open_clip.modified_resnet import ModifiedResNet

    from foveate.evals.synthetic.tiny_embedder import build_tiny_embedder

    path = build_tiny_embedder(tmp_path / "rn", seed=1, tower="resnet")
    emb = load_embedder(f"openclip:{path}")
    assert isinstance(emb.model.visual, ModifiedResNet)
    frames = _frames(3)
    images, texts = emb.embed_images(frames), emb.embed_texts(["a red star", "a blue circle"])
    assert images.shape == (3, 64) and texts.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, rtol=1e-4)
    again = load_embedder(f"openclip:{emb.save(tmp_path / 'again')}")
    np.testing.assert_allclose(again.embed_images(frames), images, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="tower"):
        build_tiny_embedder(tmp_path / "bad", tower="cnn")


def test_tiny_resnet_keyword_builds_the_resnet_embedder_once(tmp_path):
    from open_clip.modified_resnet import ModifiedResNet

    from foveate.training.assets import resolve_embedder
    from foveate.training.config import ClipRunConfig

    assert ClipRunConfig(embedder="tiny-resnet").embedder == "tiny-resnet"  # a keyword, not a relative folder
    spec = resolve_embedder("tiny-resnet", tmp_path)
    assert spec == f"openclip:{(tmp_path / 'models' / 'embedder_resnet').resolve()}"
    assert isinstance(load_embedder(spec).model.visual, ModifiedResNet)
    built = (tmp_path / "models" / "embedder_resnet" / "open_clip_model.safetensors").stat().st_mtime_ns
    assert resolve_embedder("openclip:tiny-resnet", tmp_path) == spec
    assert (tmp_path / "models" / "embedder_resnet" / "open_clip_model.safetensors").stat().st_mtime_ns == built
    assert resolve_embedder("openclip:ViT-B-32/laion2b_s34b_b79k", tmp_path) == "openclip:ViT-B-32/laion2b_s34b_b79k"


def test_train_clip_with_a_bad_embedder_spec_fails_before_rendering_a_world(tmp_path):
    from foveate.memory.errors import FoveateError
    from foveate.training.clip import run_clip
    from foveate.training.config import ClipRunConfig

    with pytest.raises(FoveateError, match="tiny-rsnet: unknown embedder spec; use tiny, tiny-resnet, openclip:"):
        run_clip(ClipRunConfig(embedder="tiny-rsnet"), tmp_path / "out")
    assert not (tmp_path / "out" / "world").exists()
