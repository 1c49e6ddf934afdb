"""The tiny controller's twin tokens: a word after a space and the same word inside a JSON string are two
tokens of its byte-level BPE; with ``twin_tokens`` they start from one embedding, and the saved model
loads back with it."""

import torch


def test_twin_tokens_start_from_one_embedding_and_load_back(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from foveate.evals.synthetic.tiny_controller import build_tiny_controller, twin_token_pairs

    plain = build_tiny_controller(tmp_path / "plain", hidden_size=64, vocab_size=2048, tool_schemas_in_vocab=True)
    twin = build_tiny_controller(
        tmp_path / "twin", hidden_size=64, vocab_size=2048, tool_schemas_in_vocab=True, twin_tokens=True
    )
    tokenizer = AutoProcessor.from_pretrained(twin).tokenizer
    # The description's word and the answer's are the twins: " left" in prose, "left" after a quote.
    described = tokenizer("The frames show a red star moving left.")["input_ids"][-2]
    answered = tokenizer('{"answer": "left')["input_ids"][-1]
    assert described != answered
    assert (described, answered) in twin_token_pairs(tokenizer)
    pairs = twin_token_pairs(tokenizer)
    assert len(pairs) > 50 and all(a != b for a, b in pairs)

    weights = {
        name: Qwen2_5_VLForConditionalGeneration.from_pretrained(path).get_input_embeddings().weight
        for name, path in (("plain", plain), ("twin", twin))
    }
    spaced, bare = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    assert torch.equal(weights["twin"][spaced], weights["twin"][bare])
    assert not torch.allclose(weights["plain"][spaced], weights["plain"][bare])
    # Only the twins moved: every other row is the plain init's (same seed).
    others = torch.ones(len(weights["plain"]), dtype=torch.bool)
    others[bare] = False
    assert torch.equal(weights["twin"][others], weights["plain"][others])


def test_vision_tower_size_and_image_budget_reach_the_saved_model(tmp_path):
    import numpy as np
    from PIL import Image
    from transformers import AutoConfig, AutoProcessor

    from foveate.evals.synthetic.tiny_controller import build_tiny_controller

    frame = Image.fromarray(np.zeros((120, 160, 3), np.uint8))
    tokens = {}
    for side, depth, width in ((112, 1, 32), (168, 2, 64)):
        path = build_tiny_controller(
            tmp_path / str(side), hidden_size=64, vision_depth=depth, vision_hidden=width, image_side=side
        )
        vision = AutoConfig.from_pretrained(path).vision_config
        assert (vision.depth, vision.hidden_size, vision.fullatt_block_indexes) == (depth, width, list(range(depth)))
        grid = AutoProcessor.from_pretrained(path).image_processor(images=[frame])["image_grid_thw"][0]
        tokens[side] = int(grid.prod()) // 4  # 2x2 patches merge into one token
    assert tokens == {112: 12, 168: 24}


def test_pipeline_config_builds_the_controller_it_describes(tmp_path):
    from transformers import AutoConfig

    from foveate.training.pipeline import PipelineConfig

    c = PipelineConfig(seed=3, hidden=64, layers=1, vocab=1024, vision_depth=2, vision_hidden=48, image_side=168)
    config = AutoConfig.from_pretrained(c.build_controller(tmp_path / "controller"))
    text = getattr(config, "text_config", config)
    assert (text.hidden_size, text.num_hidden_layers) == (64, 1)
    assert (config.vision_config.depth, config.vision_config.hidden_size) == (2, 48)


def test_spaced_answer_words_are_one_token_in_prose_and_in_the_answer(tmp_path):
    """With ``spaced_answer_words`` the description's colour and direction and the answer's are one token
    (the space before them is its own), text round-trips, and other words keep their space."""
    from transformers import AutoProcessor

    from foveate.training.pipeline import PipelineConfig

    described = "The frames show a blue star moving down.\nOptions: A. white B. green"
    tokenizers = {
        spaced: AutoProcessor.from_pretrained(
            PipelineConfig(hidden=64, spaced_answer_words=spaced).build_controller(tmp_path / str(spaced))
        ).tokenizer
        for spaced in (False, True)
    }
    for spaced, tok in tokenizers.items():
        pieces = tok.convert_ids_to_tokens(tok(described)["input_ids"])
        answered = tok.convert_ids_to_tokens(tok('{"answer": "blue", "direction": "down"}')["input_ids"])
        assert tok.decode(tok(described)["input_ids"]) == described
        shared = {"blue", "down", "white", "green"} <= set(pieces) and {"blue", "down"} <= set(answered)
        assert shared == spaced, pieces
        assert "\u0120star" in pieces and "\u0120moving" in pieces  # other words keep their space
        words = [w for w, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str("a red redo")]
        assert words == (["a", "\u0120", "red", "\u0120redo"] if spaced else ["a", "\u0120red", "\u0120redo"])
