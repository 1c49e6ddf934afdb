"""Training on CPU with tiny models: SFT overfits and its tool calls execute, GRPO rolls out with the
tools and scores each reward component, embedder fine-tuning raises held-out retrieval R@1.

One small world and one SFT run are shared by the module; every run goes through the YAML config
loader and the code `foveate train` runs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from foveate.agent.config import AgentConfig
from foveate.memory.config import IngestConfig
from foveate.training.config import ConfigError, load_config

AGENT = {"max_steps": 4, "max_frames": 16, "overview_images": 1, "overview_chars": 400}
INGEST = {"thumbnail_max_side": 64, "embed_max_side": 64}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, world):
    """Two oracle episodes (retrieve, then look, then answer), fitted for 120 epochs."""
    from foveate.training.sft import run_sft

    tmp = tmp_path_factory.mktemp("sft")
    cfg = write_config(
        tmp / "sft.yaml",
        {
            "model": {"path": "tiny"},
            "embedder": "tiny",
            "lora": {"enabled": False},
            "world": {"dir": str(world), "max_questions": 2},
            "agent": AGENT,
            "ingest": INGEST,
            "data": {
                "cache_rendered": True,
                "oracle": {
                    "p_skip_retrieve": 0,
                    "p_wrong_window": 0,
                    "p_retrieve_only": 0,
                    "p_thought": 0,
                    "p_dense": 0,
                },
            },
            "trl": {
                "num_train_epochs": 120,
                "per_device_train_batch_size": 2,
                "learning_rate": 3e-3,
                "gradient_checkpointing": False,
                "lr_scheduler_type": "constant",
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
                "use_cpu": True,
            },
        },
    )
    config = load_config(cfg, "sft")
    return run_sft(config, tmp / "out"), tmp / "out"


def test_sft_overfits_and_its_tool_call_executes_in_the_agent(sft_run, world):
    from foveate.agent.backends import load_controller
    from foveate.agent.graph import answer_question
    from foveate.agent.records import read_manifest
    from foveate.memory.video_memory import ingest

    result, out = sft_run
    assert result.examples == 2
    examples = (out / "data" / "examples.jsonl").read_text().splitlines()
    assert all('"role": "tool"' in json.loads(e)["messages"] for e in examples)
    assert result.losses[-1] < result.losses[0] / 5, result.losses

    row = read_manifest(world / "manifest.jsonl")[0]
    memory = ingest(row.video, embedder=f"openclip:{out / 'models' / 'embedder'}", config=IngestConfig(**INGEST))
    traj = answer_question(
        memory, row.question, row.options, load_controller(str(result.controller)), AgentConfig(**AGENT)
    )
    first = traj.steps[0]
    assert first.text.startswith('<tool_call>{"name": "retrieve"'), first.text
    assert first.tool_turns and first.tool_turns[0].name == "retrieve" and first.tool_turns[0].error is None
    summary = first.tool_turns[0].summary
    assert summary.startswith("retrieve(") and "clips by similarity" in summary, summary


def test_sft_on_the_shared_prompt_trains_as_trls_own_loss_does(world, tmp_path, monkeypatch):
    """Two SFT runs from the same init on the same batches, one through training/prefix.py (the prompt once per
    batch, the lm head on labelled positions) and one through TRL's forward over the padded batch, log the same
    losses step by step."""
    import foveate.training.prefix as prefix
    from foveate.training.sft import run_sft

    calls = []
    real = prefix.forward_labelled
    monkeypatch.setattr(prefix, "forward_labelled", lambda *a, **k: calls.append(1) or real(*a, **k))
    runs = {}
    for shared in (True, False):
        cfg = write_config(
            tmp_path / f"sft_{shared}.yaml",
            {
                "model": {"path": "tiny"},
                "embedder": "tiny",
                "lora": {"enabled": False},
                "shared_prefix": shared,
                "world": {"dir": str(world), "max_questions": 3},
                "agent": AGENT,
                "ingest": INGEST,
                "data": {"cache_rendered": True, "oracle_paths_per_question": 2},
                "trl": {
                    "num_train_epochs": 2,
                    "per_device_train_batch_size": 3,
                    "learning_rate": 3e-3,
                    "gradient_checkpointing": False,
                    "logging_steps": 1,
                    "save_strategy": "no",
                    "report_to": "none",
                    "use_cpu": True,
                },
            },
        )
        before = len(calls)
        runs[shared] = run_sft(load_config(cfg, "sft"), tmp_path / f"out_{shared}").losses
        assert (len(calls) > before) == shared  # the shared path ran in one run only
    assert len(runs[True]) == 4 and runs[True][-1] < runs[True][0], runs
    assert runs[True] == pytest.approx(runs[False], rel=1e-3), runs


def test_the_controller_keeps_the_settings_it_was_trained_with(sft_run):
    from foveate.agent.config import agent_settings

    result, out = sft_run
    agent, ingest, embedder, trained = agent_settings(str(result.controller), None)
    assert trained is not None and agent == AgentConfig(**AGENT)
    assert (
        ingest.thumbnail_max_side == INGEST["thumbnail_max_side"] and ingest.embed_max_side == INGEST["embed_max_side"]
    )
    assert embedder == f"openclip:{(out / 'models' / 'embedder').resolve()}"
    # Command-line flags win over the trained settings; other fields keep them.
    agent, *_ = agent_settings(str(result.controller), "openclip:ViT-B-32/openai", max_steps=2, max_frames=None)
    assert (
        agent.max_steps == 2
        and agent.max_frames == AGENT["max_frames"]
        and agent.overview_chars == AGENT["overview_chars"]
    )
    assert agent_settings(str(result.controller), "openclip:ViT-B-32/openai")[2] == "openclip:ViT-B-32/openai"


def test_a_controller_without_trained_settings_gets_the_defaults(tmp_path):
    from foveate.agent.config import agent_settings

    agent, ingest, embedder, trained = agent_settings(str(tmp_path), None, max_steps=3)
    assert trained is None and embedder is None and ingest == IngestConfig()
    assert agent == AgentConfig(max_steps=3)
    assert agent_settings("Qwen/Qwen2.5-VL-7B-Instruct", None)[3] is None


def test_grpo_rolls_out_with_tools_and_logs_each_reward(sft_run, world, tmp_path):
    from foveate.training.grpo import run_grpo

    result, out = sft_run
    cfg = write_config(
        tmp_path / "grpo.yaml",
        {
            "model": {"path": str(result.controller)},
            "embedder": f"openclip:{out / 'models' / 'embedder'}",
            "lora": {"enabled": False},
            "world": {"dir": str(world), "max_questions": 2},
            "agent": AGENT,
            "ingest": INGEST,
            "generation": "transformers",
            "trl": {
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "num_generations": 2,
                "max_completion_length": 128,
                "temperature": 0.5,
                "learning_rate": 1e-5,
                "gradient_checkpointing": False,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
                "use_cpu": True,
            },
        },
    )
    grpo = run_grpo(load_config(cfg, "grpo"), tmp_path / "out")
    logs = [h for h in grpo.log_history if "reward" in h]
    assert len(logs) == 2
    for name in ("correct", "format", "evidence_iou", "frame_penalty"):
        assert all(f"rewards/{name}/mean" in h for h in logs)
    assert all("tools/parse_failure_rate" in h and "tools/rollouts_with_call" in h for h in logs)
    assert max(h["tools/call_frequency"] for h in logs) > 0  # rollouts called the tools
    assert min(h["rewards/frame_penalty/mean"] for h in logs) < 0  # ... and spent frames doing so

    row = json.loads((world / "manifest.jsonl").read_text().splitlines()[0])
    ask = subprocess.run(
        [
            sys.executable,
            "-m",
            "foveate.cli",
            "ask",
            str(world / row["video"]),
            row["question"],
            "--json",
            "--controller",
            str(grpo.controller),
            "--embedder",
            f"openclip:{out / 'models' / 'embedder'}",
            "--max-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0, ask.stderr
    assert "answer" in json.loads(ask.stdout.splitlines()[-1])
    assert "trained with: max_steps=4" in " ".join(ask.stderr.split())  # the saved settings, --max-steps 2 applied


def test_grpo_stops_when_no_tool_call_parses():
    from foveate.training.rewards import ToolCallCollapse, ToolCallMonitor

    monitor = ToolCallMonitor(patience=2)
    ok = [[{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "zoom", "arguments": {}}}]}]]
    broken = [[{"role": "assistant", "content": '<tool_call>{"name": "zoom", "arguments": </tool_call>'}]]
    logged = {}
    assert monitor.observe(ok, logged.__setitem__)["tools/rollouts_with_call"] == 1.0
    assert monitor.observe(broken, logged.__setitem__)["tools/parse_failure_rate"] == 1.0
    assert logged["tools/parse_failure_rate"] == 1.0
    with pytest.raises(ToolCallCollapse, match="2 consecutive"):
        monitor.observe(broken)


def test_clip_finetuning_raises_held_out_retrieval(tmp_path):
    """The packaged tiny config, as `foveate train clip tiny_clip` runs it."""
    from foveate.cli.train import resolve_config_path
    from foveate.training.clip import run_clip

    result = run_clip(load_config(resolve_config_path("tiny_clip"), "clip"), tmp_path / "out")
    assert result.losses[-1] < result.losses[0] / 2
    assert result.r1_after > result.r1_before, (result.r1_before, result.r1_after)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["r1_after"] == result.r1_after
    assert (tmp_path / "out" / "embedder" / "open_clip_config.json").is_file()


def test_the_cosine_schedule_warms_up_then_decays_to_zero():
    from foveate.training.clip import lr_factor
    from foveate.training.config import ClipRunConfig

    cosine = ClipRunConfig(embedder="tiny", lr_schedule="cosine", warmup_steps=10)
    factors = [lr_factor(cosine, 110, step) for step in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == 1.0 == max(factors)
    assert factors[10:] == sorted(factors[10:], reverse=True) and factors[-1] < 1e-3
    assert factors[60] == pytest.approx(0.5)  # halfway through the decay
    assert {lr_factor(ClipRunConfig(embedder="tiny"), 110, step) for step in range(110)} == {1.0}


@pytest.mark.parametrize(
    "name", ["tiny_sft", "tiny_grpo", "tiny_clip", "qwen25vl_sft", "qwen25vl_grpo", "vitb32_clip"]
)
def test_packaged_configs_validate(name):
    from foveate.cli.train import resolve_config_path

    kind = {"sft": "sft", "grpo": "grpo", "clip": "clip"}[name.rsplit("_", 1)[1]]
    path = resolve_config_path(name)
    config = load_config(path, kind)
    raw = yaml.safe_load(path.read_text())
    dumped = config.model_dump(mode="json")
    assert set(raw) <= set(dumped), "a section of the YAML was dropped"
    assert {k: dumped["trl"][k] for k in raw.get("trl", {})} == raw.get("trl", {})
    assert type(config).model_validate(config.model_dump()) == config


def test_checkpointing_keeps_its_value_without_a_deprecation_warning(tmp_path):
    """transformers 5 warns at ``gradient_checkpointing``, which TRL's configs default to True; the configs' value
    (or TRL's default) reaches the trainer under the new name, silently."""
    import warnings

    import trl

    from foveate.training.config import trl_config

    if "activation_checkpointing" not in trl.SFTConfig.__dataclass_fields__:
        pytest.skip("transformers before the rename")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        off = trl_config("sft", {"gradient_checkpointing": False, "use_cpu": True}, tmp_path)
        default = trl_config("grpo", {"use_cpu": True}, tmp_path)
        kwargs = {"gradient_checkpointing_kwargs": {"use_reentrant": False}, "use_cpu": True}
        on = trl_config("sft", kwargs, tmp_path)
    assert (off.activation_checkpointing, off.gradient_checkpointing) == (False, False)
    expected = trl.GRPOConfig.__dataclass_fields__["gradient_checkpointing"].default
    assert default.activation_checkpointing is default.gradient_checkpointing is expected
    assert on.activation_checkpointing_kwargs == on.gradient_checkpointing_kwargs == {"use_reentrant": False}
    with pytest.raises(ValueError, match="not both"):
        trl_config("sft", {"gradient_checkpointing": True, "activation_checkpointing": True}, tmp_path)


def test_config_errors_name_the_file_and_field(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", {"model": {"path": "tiny"}, "rewards": {"corect": 1.0}})
    with pytest.raises(ConfigError, match=r"bad.yaml: rewards.corect"):
        load_config(bad, "grpo")
    trl_typo = write_config(tmp_path / "typo.yaml", {"model": {"path": "tiny"}, "trl": {"learnin_rate": 1.0}})
    with pytest.raises(ConfigError, match=r"typo.yaml:.*trl: .*learnin_rate"):
        load_config(trl_typo, "sft")
    for value, expected in (("abc", "float"), (True, "float"), ([1, 2], "float")):
        wrong = write_config(tmp_path / "wrong.yaml", {"model": {"path": "tiny"}, "trl": {"num_train_epochs": value}})
        with pytest.raises(ConfigError, match=rf"wrong.yaml:.*trl.num_train_epochs: .* is not a valid {expected}"):
            load_config(wrong, "sft")
    ok = write_config(
        tmp_path / "ok.yaml", {"model": {"path": "tiny"}, "trl": {"num_train_epochs": 3, "max_steps": 2}}
    )
    assert load_config(ok, "sft").trl["num_train_epochs"] == 3  # an int where a float is declared is fine
    cli = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "train", "sft", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2 and "missing.yaml" in cli.stderr and "Traceback" not in cli.stderr


def test_set_overrides_config_fields(tmp_path):
    from foveate.cli.train import resolve_config_path

    path = resolve_config_path("tiny_sft")
    config = load_config(
        path, "sft", ["trl.num_train_epochs=7", "trl.learning_rate=2e-4", "world.videos=3", "agent.max_steps=5"]
    )
    assert config.trl["num_train_epochs"] == 7 and config.trl["learning_rate"] == 2e-4
    assert config.world.videos == 3 and config.agent.max_steps == 5
    assert load_config(path, "sft").trl["num_train_epochs"] != 7  # the file is untouched
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, "sft", ["trl.num_train_epochs"])
    with pytest.raises(ConfigError, match="world.vidoes"):
        load_config(path, "sft", ["world.vidoes=3"])
    cli = subprocess.run(
        [sys.executable, "-m", "foveate.cli", "train", "sft", "tiny_sft", "--set", "seed"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 2 and "KEY=VALUE" in cli.stderr and "Traceback" not in cli.stderr


def test_grpo_runs_a_controller_with_qwen25vl_released_template(world, tmp_path):
    """Qwen2.5-VL's own template renders no tools (TRL refuses it); loading for training installs the tool template.
    LoRA, as in the real-model config."""
    from transformers import AutoProcessor
    from trl.chat_template_utils import qwen2_5_vl_chat_template

    from foveate.agent.backends.templates import QWEN_VL_TOOLS_TEMPLATE
    from foveate.evals.synthetic.tiny_controller import build_tiny_controller
    from foveate.training.grpo import run_grpo

    controller = build_tiny_controller(tmp_path / "controller")
    processor = AutoProcessor.from_pretrained(controller)
    processor.chat_template = processor.tokenizer.chat_template = qwen2_5_vl_chat_template
    processor.save_pretrained(controller)
    cfg = write_config(
        tmp_path / "grpo.yaml",
        {
            "model": {"path": str(controller)},
            "embedder": "tiny",
            "lora": {"enabled": True, "r": 8, "alpha": 16},
            "world": {"dir": str(world), "max_questions": 1},
            "agent": AGENT,
            "ingest": INGEST,
            "generation": "transformers",
            "trl": {
                "max_steps": 1,
                "per_device_train_batch_size": 2,
                "num_generations": 2,
                "max_completion_length": 16,
                "learning_rate": 1e-5,
                "gradient_checkpointing": False,
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
                "use_cpu": True,
            },
        },
    )
    grpo = run_grpo(load_config(cfg, "grpo"), tmp_path / "out")
    assert [h for h in grpo.log_history if "reward" in h]
    assert AutoProcessor.from_pretrained(grpo.controller).chat_template == QWEN_VL_TOOLS_TEMPLATE
    assert not (grpo.controller / "adapter_config.json").exists()  # the adapter is merged


def test_lora_sft_trains_the_language_model_only_and_saves_merged_weights(world, tmp_path):
    """The real-model configs train LoRA adapters: the saved controller is a plain merged checkpoint."""
    from safetensors.torch import load_file

    from foveate.agent.backends import load_controller
    from foveate.training.sft import run_sft

    cfg = write_config(
        tmp_path / "sft.yaml",
        {
            "model": {"path": "tiny"},
            "embedder": "tiny",
            "lora": {"enabled": True, "r": 8, "alpha": 16, "dropout": 0.0},
            "world": {"dir": str(world), "max_questions": 1},
            "agent": AGENT,
            "ingest": INGEST,
            "data": {"cache_rendered": True},
            "trl": {
                "num_train_epochs": 8,
                "per_device_train_batch_size": 1,
                "learning_rate": 2e-2,
                "gradient_checkpointing": False,
                "lr_scheduler_type": "constant",
                "logging_steps": 1,
                "save_strategy": "no",
                "report_to": "none",
                "use_cpu": True,
            },
        },
    )
    result = run_sft(load_config(cfg, "sft"), tmp_path / "out")
    # One example seen 8 times: without training its loss would not move. (Adapters over a random,
    # frozen base with frozen random embeddings learn slowly, so the bar is low.)
    assert result.examples == 1 and result.losses[-1] < result.losses[0] - 0.2, result.losses

    saved = result.controller
    assert not (saved / "adapter_config.json").exists()  # merged, not an adapter folder
    before = load_file(tmp_path / "out" / "models" / "controller" / "model.safetensors")
    after = load_file(saved / "model.safetensors")
    assert set(after) == set(before)  # same parameter names: no lora_A/lora_B left behind
    changed = {name for name in before if not (before[name] == after[name]).all()}
    assert any(".layers." in n and "proj" in n for n in changed)  # the language model's linear layers moved
    assert not any("visual" in n for n in changed)  # the vision tower stayed frozen
    generation = load_controller(str(saved)).generate(
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], None
    )
    assert isinstance(generation.text, str) and generation.tokens_in > 0 and generation.tokens_out > 0


def test_grpo_warns_when_every_rollout_ends_on_a_tool_call(caplog):
    """TRL ends a rollout unanswered when the next tool result would pass max_completion_length."""
    from foveate.training.rewards import ToolCallMonitor

    monitor = ToolCallMonitor(patience=2)
    call = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "zoom", "arguments": {}}}]}
    cut = [[call]]  # the tool result did not fit: rolled back, no answer turn
    answered = [
        [call, {"role": "tool", "content": "zoom 1.0-2.0s"}, {"role": "assistant", "content": "<answer>{}</answer>"}]
    ]
    assert monitor.observe(answered)["tools/unfinished_rollouts"] == 0.0
    assert monitor.observe(cut + answered)["tools/unfinished_rollouts"] == 0.5
    with caplog.at_level("WARNING", logger="foveate.training.rewards"):
        monitor.observe(cut)
        assert "max_completion_length" not in caplog.text  # one round is not yet a pattern
        monitor.observe(cut)
    assert "max_completion_length" in caplog.text
