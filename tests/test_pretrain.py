"""Pretraining on CPU with a tiny controller: reading episodes render as the SFT collator renders
them, with the real tools' text; captioned frames show what their caption names; copying a
question's subject into a retrieve query is learned for subjects never trained on; the saved
controller loads like any other; the same seed gives the same run.

Everything goes through the YAML config loader and ``run_pretrain``, as ``foveate train`` would.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from foveate.training.config import ConfigError, load_config

COPY_RUN = {
    "mix": {"search": 1.0, "look": 0.0, "cite": 0.0, "caption": 0.0},
    "read": {"p_bare": 0.5},
    "steps": 550,
    "batch_size": 32,
    "learning_rate": 3.0e-3,
    "lr_schedule": "constant",
    "eval_examples": 32,
}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def controller(tmp_path_factory) -> Path:
    from foveate.evals.synthetic.tiny_controller import build_tiny_controller

    out = tmp_path_factory.mktemp("models") / "controller"
    return build_tiny_controller(out, hidden_size=64, vocab_size=2048, tool_schemas_in_vocab=True)


@pytest.fixture(scope="module")
def sampler():
    from foveate.training.config import PretrainRunConfig
    from foveate.training.pretrain import TaskSampler

    config = PretrainRunConfig(model={"path": "unused", "train_vision": True}, eval_examples=4)
    return TaskSampler(config)


def test_reading_episodes_render_like_sft_examples_and_copy_what_the_tools_printed(controller, sampler):
    from transformers import AutoProcessor

    from foveate.agent.backends.hf import prepare_messages
    from foveate.training.pretrain import Renderer

    processor = AutoProcessor.from_pretrained(controller)
    renderer = Renderer(processor)
    rng = np.random.default_rng(0)
    episodes = [sampler._one(rng, "cite", sampler.trained, "train") for _ in range(6)]
    collator = renderer.collators["read"]
    for episode in episodes:
        fast = renderer(episode, score=True)
        # the processor's own tensors (its slow assistant-mask alignment) give the same tokens and labels
        messages, tools = prepare_messages(episode.messages, collator.tools, processor)
        reference = processor.apply_chat_template(
            [messages],
            tools=tools,
            chat_template=collator.chat_template,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            return_assistant_tokens_mask=True,
            processor_kwargs={"add_special_tokens": False},
        )
        assert torch.equal(fast.inputs["input_ids"], reference["input_ids"][0])
        labels = torch.where(reference["assistant_masks"][0].bool(), reference["input_ids"][0], -100)
        assert torch.equal(fast.inputs["labels"], labels)
        turns = [m["content"][0]["text"] for m in episode.messages if m["role"] == "assistant"]
        tool_text = "\n".join(b["text"] for m in episode.messages if m["role"] == "tool" for b in m["content"])
        for target, (skill, positions) in zip(episode.targets, fast.targets):
            copied = turns[target.turn][target.start : target.end]
            assert processor.tokenizer.decode(fast.inputs["input_ids"][positions]).strip() == copied.strip()
            if skill == "handle":  # a handle the retrieve result printed, with the span the thought named
                assert f"\n{copied} [" in "\n" + tool_text
            if skill == "query":
                assert copied in episode.messages[1]["content"][0]["text"]
        question = episode.messages[1]["content"][0]["text"].split("Question: ")[1].splitlines()[0]
        results = [m["content"][-1]["text"] for m in episode.messages if m["role"] == "tool"]
        assert results and all(r.endswith(f"]\nQuestion: {question}") for r in results)  # as the agent's tools do
    assert {"query", "evidence"} <= {t.skill for e in episodes for t in e.targets}


def test_described_reading_episodes_answer_with_the_option_their_description_names(sampler):
    """A reading episode that answers a one-event question ends as the oracle's answers do: what the frames
    show, in caption words, then the option those words name, as written, which picks it. A "when"
    question is answered with the clip looked at, as the evidence cites it (its handle or its times)."""
    from foveate.agent.answer import LETTERS, parse_answer, time_span

    rng = np.random.default_rng(2)
    described = when = 0
    for _ in range(40):
        episode = sampler._one(rng, "cite", sampler.trained, "train")
        last = episode.messages[-1]["content"][0]["text"]
        question = next(m for m in episode.messages if m["role"] == "user")
        options = [x[3:] for x in question["content"][0]["text"].splitlines() if len(x) > 2 and x[1:3] == ". "]
        assert '"choice"' not in last  # no letter: the text picks the option
        answer = parse_answer(last, options)
        if all(time_span(o) for o in options):
            when += 1
            cited = json.loads(last[last.index("{") : last.rindex("}") + 1])["evidence"][0]
            assert answer.text == (cited if isinstance(cited, str) else f"{cited[0]:.1f}-{cited[1]:.1f}s")
            assert [last[t.start : t.end] for t in episode.targets if t.skill == "when"] == [answer.text]
            continue
        assert answer is not None and options[LETTERS.index(answer.choice)] == answer.text
        skills = {t.skill: last[t.start : t.end] for t in episode.targets if t.skill == "said"}
        if not last.startswith("The frames show "):
            assert not skills
            continue
        described += 1
        description = last.split("\n")[0]
        assert skills == {"said": answer.text}
        assert answer.text in description.removeprefix("The frames show ").rstrip(".").replace("'", " ").split()
    assert 10 <= described < 40  # direction, colour and card questions; not times or counts
    assert when >= 3


def test_order_episodes_copy_every_option_and_answer_the_first_or_last_line(controller):
    """ "Which appeared first (last)?" in reading episodes: one retrieve whose list query names the five
    options by letter, run on the real tool; the answer is the letter on the result's first (last) line,
    citing its clip, and it picks that option. The rendered targets are the tokens of what they copy."""
    from transformers import AutoProcessor

    from foveate.agent.answer import LETTERS, parse_answer
    from foveate.training.config import ReadTasks
    from foveate.training.pretrain import ReadEpisode, Renderer, subjects

    renderer = Renderer(AutoProcessor.from_pretrained(controller))
    trained, _ = subjects(0.25)
    asked = set()
    for seed in range(12):
        episode = ReadEpisode(np.random.default_rng(seed), ReadTasks(p_order=1.0)).build(trained[0], "cite", trained)
        question = next(m for m in episode.messages if m["role"] == "user")["content"][0]["text"]
        options = [x[3:] for x in question.splitlines() if len(x) > 2 and x[1:3] == ". "]
        call, last = [m["content"][0]["text"] for m in episode.messages if m["role"] == "assistant"]
        letters = list(LETTERS[: len(options)])
        assert json.loads(call[call.index("{") : call.rindex("}") + 1])["arguments"] == {"query": letters, "k": 1}
        result = next(m for m in episode.messages if m["role"] == "tool")["content"][0]["text"].splitlines()[1:]
        assert sorted(line.split(": c")[0] for line in result) == [f"{x}. {o}" for x, o in zip(letters, options)]
        starts = [float(line.split("s score")[0].split(") ")[1].split("-")[0]) for line in result]
        assert starts == sorted(starts)
        which = "first" if "appeared first" in question else "last"
        asked.add(which)
        line = result[0 if which == "first" else -1]
        answer = parse_answer(last, options)
        assert (
            answer.text == line[0] == answer.choice
            and line.split(": c")[0] == f"{answer.choice}. " + options[LETTERS.index(answer.choice)]
        )
        assert json.loads(last[8:-9])["evidence"] == [line.split(": ")[1].split(" ")[0]]
        turns = [call, last]
        assert sorted(t.skill for t in episode.targets) == ["evidence", "order"] + ["queries"] * 5
        fast = renderer(episode, score=True)
        for target, (_, positions) in zip(episode.targets, fast.targets):
            copied = turns[target.turn][target.start : target.end]
            assert renderer.processor.tokenizer.decode(fast.inputs["input_ids"][positions]).strip() == copied
    assert asked == {"first", "last"}


def test_a_colour_episodes_thought_names_no_colour_but_the_answers_when_it_names_the_query():
    """In a colour question the drawn subject's colour is not the answer's. By default (earlier runs' data)
    the last look's thought names that subject, so most colour episodes say two colours; with
    ``thought_names_query`` it names the shape alone, and the only colour said is the answer's."""
    from foveate.evals.synthetic.events import COLOURS
    from foveate.training.config import ReadTasks
    from foveate.training.pretrain import ReadEpisode

    def colours_said(tasks: ReadTasks) -> tuple[int, int]:
        episodes = competing = 0
        for seed in range(60):
            episode = ReadEpisode(np.random.default_rng(seed), tasks).build("white triangle", "cite")
            question = next(m for m in episode.messages if m["role"] == "user")["content"][0]["text"]
            if "Question: What colour" not in question:
                continue
            said = [m["content"][0]["text"] for m in episode.messages if m["role"] == "assistant"]
            answer = json.loads(said[-1].split("<answer>")[1].split("</answer>")[0])["answer"]
            words = {w.strip(".,'\"") for text in said for w in text.split()}
            episodes += 1
            competing += bool(words & set(COLOURS) - {answer})
        return episodes, competing

    episodes, competing = colours_said(ReadTasks())
    assert episodes >= 6 and competing > episodes // 2
    assert colours_said(ReadTasks(thought_names_query=True)) == (episodes, 0)  # the same draws, one colour


def test_without_unseen_motion_every_described_direction_is_the_motion_lines():
    """By default (earlier runs' data) an episode that looked without a dense_sample still describes a
    direction, drawn at random, which nothing in it shows. With ``describe_unseen_motion`` off a
    description names a direction only after a motion line, and then the line's: one to copy."""
    from foveate.training.config import ReadTasks
    from foveate.training.pretrain import DESCRIBED, MOTION_RE, ReadEpisode

    def described(tasks: ReadTasks) -> tuple[int, int, int]:
        unseen = copied = other = 0
        for seed in range(120):
            episode = ReadEpisode(np.random.default_rng(seed), tasks)
            final = episode.build("white triangle", "cite").messages[-1]["content"][0]["text"]
            said = MOTION_RE.search(final.split("\n")[0]) if final.startswith(DESCRIBED) else None
            if said is None:
                continue
            if not episode.motion_shown:
                unseen += 1
            elif said[0] == f" moving {episode.moving}":
                copied += 1
            else:
                other += 1
        return unseen, copied, other

    unseen, copied, other = described(ReadTasks())
    assert unseen >= 10 and copied >= 5 and other == 0
    assert described(ReadTasks(describe_unseen_motion=False)) == (0, copied, 0)  # the same draws otherwise


def test_a_second_search_over_a_short_video_lists_each_clip_once():
    """Two searches of five clips over a video of five clips: the second lists clips the first did, and
    never one twice (a short video used to run out of unlisted clips and fail)."""
    from foveate.training.config import ReadTasks
    from foveate.training.pretrain import ReadEpisode

    for seed in range(40):
        episode = ReadEpisode(np.random.default_rng(seed), ReadTasks(p_second_search=1.0))
        episode.memory.duration_seconds, episode.clip_seconds = 40.0, 8.0
        first, second = episode._hits(5), episode._hits(5)
        for hits in (first, second):
            assert len({h.clip_id for h in hits}) == len(hits) == 5
            assert all(0 <= h.clip_id < 5 for h in hits)
        assert {h.clip_id for h in second} == {h.clip_id for h in first}


def test_held_out_episodes_ask_about_subjects_never_trained_on(sampler):
    assert not set(sampler.trained) & set(sampler.heldout_subjects)
    questions = [e.messages[1]["content"][0]["text"] for e in sampler.heldout() if e.kind == "read"]
    assert questions and all(any(s.split()[1] in q for s in sampler.heldout_subjects) for q in questions)


def test_held_out_set_scores_reading_a_zoom_inside_an_episode_when_grounding_is_trained(sampler):
    """With grounded episodes in the mix the held-out set adds colour episodes scored on the description's
    colour word alone (``seen``): lone captions can be right while an episode's zoom goes unread."""
    from foveate.evals.synthetic.events import COLOURS
    from foveate.training.config import PretrainRunConfig
    from foveate.training.pretrain import TaskSampler

    assert not any(t.skill == "seen" for e in sampler.heldout() for t in e.targets)  # no ground in its mix
    config = PretrainRunConfig(
        model={"path": "unused", "train_vision": True},
        eval_examples=2,
        mix={"search": 0, "look": 0, "cite": 0, "caption": 0, "ground": 1},
        ground={"oracle": {}},
    )
    assert len(TaskSampler(config).heldout()) == 2  # an oracle that does not describe: nothing to score
    config.ground.oracle["describe"] = True
    held = TaskSampler(config).heldout()
    colour = [e for e in held if any(t.skill == "seen" for t in e.targets)]
    assert len(held) == 4 and len(colour) == 2
    for ex in colour:
        ((seen,),) = [ex.targets]
        assert "What colour was" in ex.messages[1]["content"][0]["text"]
        assert ex.messages[-1]["content"][0]["text"][seen.start : seen.end] in COLOURS
    assert [e.source for e in held] == [e.source for e in TaskSampler(config).heldout()]  # the same every run


def test_captioned_frames_show_the_named_sprite(sampler):
    from foveate.evals.synthetic.events import COLOURS

    rng = np.random.default_rng(1)
    examples = [sampler._one(rng, "caption", [], "val") for _ in range(12)]
    named = [e for e in examples if e.targets and e.targets[0].skill == "colour"]
    assert named
    for example in named:
        caption = example.messages[1]["content"][0]["text"]
        colour = caption[example.targets[0].start : example.targets[0].end]
        frame = np.asarray(example.messages[0]["content"][0]["image"]).astype(int)
        assert frame.shape == (120, 160, 3)
        # the sprite is drawn in its colour, which the muted backgrounds never come close to
        close = np.abs(frame - np.array(COLOURS[colour])).max(axis=-1) < 40
        assert close.sum() > 20, caption


def test_varied_captions_move_the_caption_away_from_the_frame_and_still_score_its_colour(controller):
    """``p_varied`` rewords captions (prompt, its place, a lead-in) so the colour is not always the same
    number of tokens after the frame; the scored tokens are still the colour's, and at 0 the draws are
    the plain ones (earlier runs' data unchanged)."""
    from transformers import AutoProcessor

    from foveate.evals.synthetic.events import COLOURS
    from foveate.training.config import CaptionTasks
    from foveate.training.pretrain import CAPTION_PROMPT, Renderer, caption_example

    plain = [caption_example(np.random.default_rng(4), "val", CaptionTasks()) for _ in range(2)]
    assert plain[0].messages[1] == plain[1].messages[1]
    assert plain[0].messages[0]["content"][1]["text"] == CAPTION_PROMPT

    rng = np.random.default_rng(3)
    varied = [caption_example(rng, "val", CaptionTasks(p_varied=1.0)) for _ in range(40)]
    renderer = Renderer(AutoProcessor.from_pretrained(controller))
    distances, leads = set(), set()
    for ex in varied:
        if not ex.targets or ex.targets[0].skill != "colour":
            continue
        reply = ex.messages[1]["content"][0]["text"]
        colour = reply[ex.targets[0].start : ex.targets[0].end]
        assert colour in COLOURS
        leads.add(reply[: ex.targets[0].start])
        rendered = renderer(ex, score=True)
        skill, positions = rendered.targets[0]
        ids = rendered.inputs["input_ids"]
        assert skill == "colour" and renderer.tokenizer.decode(ids[positions]).strip() == colour
        image_tokens = (ids == renderer.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).nonzero()
        distances.add(int(positions[0]) - int(image_tokens[-1]))
    assert len(leads) >= 3 and len(distances) >= 5, (leads, distances)


def test_varied_captions_without_motion_drop_the_direction_alone_and_keep_the_draws():
    """With ``varied_without_motion`` a varied caption names no direction (one frame does not show it);
    its colour and shape are still the scored targets, and the frames, prompts and leads drawn are the
    same as without it, so plain captions and the random stream are untouched."""
    from foveate.evals.synthetic.events import COLOURS, DIRECTIONS, RARE_SHAPES, SHAPES
    from foveate.training.config import CaptionTasks
    from foveate.training.pretrain import CAPTION_PROMPT, caption_example

    def draw(**fields):
        rng = np.random.default_rng(11)
        return [caption_example(rng, "val", CaptionTasks(p_varied=0.5, **fields)) for _ in range(60)], rng.random()

    (before, next_before), (after, next_after) = draw(), draw(varied_without_motion=True)
    assert next_before == next_after  # the same draws
    dropped = 0
    for a, b in zip(before, after, strict=True):
        assert a.messages[0] == b.messages[0]  # the same frame, prompt and its place
        was, now = a.messages[1]["content"][0]["text"], b.messages[1]["content"][0]["text"]
        content = a.messages[0]["content"]
        plain = [x["type"] for x in content] == ["image", "text"] and content[1]["text"] == CAPTION_PROMPT
        moving = [f" moving {d} " for d in DIRECTIONS if f" moving {d} " in was]
        if was != now:
            dropped += 1
            assert len(moving) == 1 and now == was.replace(moving[0], " ", 1)
            assert not any(f" {d} " in now for d in DIRECTIONS)
            colour, shape = (now[t.start : t.end] for t in b.targets)
            assert colour in COLOURS and shape in (*SHAPES, *RARE_SHAPES) and f"{colour} {shape} over " in now
        elif moving:
            assert plain and was.startswith("a ")  # a caption keeps its direction only when not reworded
    assert dropped >= 10


def test_grounded_episodes_pick_the_clip_that_shows_the_event_and_answer_what_it_shows(controller, sampler):
    """The picked handle names the listed clip over the answer's event, its thumbnail and the zoom's frames are
    the world's own frames there, and the answer is the question's gold option."""
    from transformers import AutoProcessor

    from foveate.agent.answer import LETTERS, chosen_letter
    from foveate.evals.synthetic.render import render_frame
    from foveate.training.config import CaptionTasks, GroundTasks
    from foveate.training.pretrain import Renderer, _world_questions, grounded_example

    renderer = Renderer(AutoProcessor.from_pretrained(controller))
    rng = np.random.default_rng(3)
    for bare in (False, True, False, True, False, True):
        ex = grounded_example(rng, "train", CaptionTasks(), GroundTasks(), bare)
        assert ex.kind == ("ground_bare" if bare else "ground")
        roles = [m["role"] for m in ex.messages]
        assert roles[: 1 - bare] == ["system"][: 1 - bare] and roles[-1] == "assistant"
        turns = [m["content"][0]["text"] for m in ex.messages if m["role"] == "assistant"]
        skills = {t.skill: turns[t.turn][t.start : t.end] for t in ex.targets}
        question = next(m for m in ex.messages if m["role"] == "user")["content"][0]["text"]
        seed, qid = ex.source.split(":")
        log, rows = _world_questions(int(seed), 1.0, 160, 120)
        row = next(r for r in rows if r.id == qid)
        assert row.question in question
        event = row.evidence[-1] if row.task == "text" else row.evidence[0]
        retrieved = next(m for m in ex.messages if m["role"] == "tool" and m["name"] == "retrieve")
        listing = retrieved["content"][0]["text"]
        pick = next(t for t in ex.targets if t.skill == "pick")
        assert turns[pick.turn][: pick.start].endswith("Clip ")  # scored where it is chosen: the thought
        line = next(x for x in listing.splitlines() if x.startswith(skills["pick"] + " ["))
        start, end = (float(v) for v in line.split()[2].removesuffix("s").split("-"))
        assert start < event[1] and event[0] < end  # the picked clip holds the event
        answer = json.loads(turns[-1].removeprefix("<answer>").removesuffix("</answer>"))
        assert answer["evidence"] == [skills["pick"]] and "choice" not in answer  # cites it
        options = [x[3:] for x in question.splitlines() if len(x) > 2 and x[1:3] == ". "]
        assert skills["answer"] == answer["answer"]
        if row.task == "grounding":  # "when": the picked clip's handle, which picks the gold option
            assert answer["answer"] == skills["pick"]
            assert chosen_letter(None, answer["answer"], options, {skills["pick"]: (start, end)}) == row.answer
        else:
            assert options[LETTERS.index(row.answer)] == answer["answer"]  # the gold option's text
        rendered = renderer(ex, score=True)
        assert "pixel_values" in rendered.inputs
        for skill, positions in rendered.targets:
            text = renderer.tokenizer.decode(rendered.inputs["input_ids"][positions]).strip()
            assert text.strip('"') == skills[skill]
        zoom = next(m for m in ex.messages if m["role"] == "tool" and m["name"] != "retrieve")
        times = [float(b["text"][2:-1]) for b in zoom["content"] if b["type"] == "text" and b["text"].startswith("t=")]
        frames = [np.asarray(b["image"]) for b in zoom["content"] if b["type"] == "image"]
        assert frames
        if zoom["name"] == "dense_sample":  # direction questions: contact sheets of the window's frames
            motion = next(b["text"] for b in zoom["content"] if b["type"] == "text" and b["text"].startswith("motion"))
            assert motion.endswith(f"objects moving {options[LETTERS.index(row.answer)]}")  # the log's motion
            continue
        assert len(frames) == len(times)
        for t, frame in zip(times, frames):  # the world's frame at that time (printed to 0.1 s)
            assert min(np.abs(frame.astype(int) - render_frame(log, t + d)).mean() for d in (-0.05, 0, 0.05)) < 1
        thumbs = [b["image"] for b in retrieved["content"] if b["type"] == "image"]
        assert all(max(np.asarray(t).shape[:2]) == 64 for t in thumbs)


@torch.no_grad()
def test_a_shared_prompt_prefix_gives_the_logits_of_one_forward_over_the_batch(controller):
    """Episodes with and without images: the system prompt and tool block computed once and repeated
    over the batch, and the lm head run on the positions that predict a label alone, give those positions
    the logits the whole batch gets in one forward, whether the rest runs as a batch or one at a time
    (also without a shared prompt: bare episodes)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from foveate.training.config import CaptionTasks, GroundTasks, ReadTasks
    from foveate.training.prefix import collate, forward_labelled, pad
    from foveate.training.pretrain import ReadEpisode, Renderer, grounded_example

    model = AutoModelForImageTextToText.from_pretrained(controller).eval()
    renderer = Renderer(AutoProcessor.from_pretrained(controller))
    rng = np.random.default_rng(5)
    grounded = [renderer(grounded_example(rng, "train", CaptionTasks(), GroundTasks())) for _ in range(3)]
    read = [renderer(ReadEpisode(rng, ReadTasks()).build("red star", "cite")) for _ in range(3)]
    bare = [renderer(ReadEpisode(rng, ReadTasks(), bare=True).build("blue ring", "cite")) for _ in range(3)]
    for group, each in [(g, e) for g in (grounded, read, bare) for e in (True, False)]:
        out = forward_labelled(model, [it.inputs for it in group], renderer.pad_id, each=each)
        assert (out.offset > 500) == (group is not bare)  # the system prompt and tool block were shared
        batch = {k: v for k, v in collate([it.inputs for it in group], renderer.pad_id).items() if k != "labels"}
        whole = model(**batch).logits[:, out.offset :]
        assert torch.equal(out.ids, batch["input_ids"][:, out.offset :])
        labels = pad([it.inputs["labels"] for it in group], -100)[:, out.offset :]
        assert torch.equal(out.scored[:, :-1], labels[:, 1:] != -100) and out.scored.sum() > 50
        assert torch.equal(out.next_tokens(), labels[:, 1:][out.scored[:, :-1]])
        torch.testing.assert_close(out.logits, whole[out.scored], atol=1e-4, rtol=1e-4)

    # the grounded episodes' images are in the part not shared
    assert all("pixel_values" in it.inputs for it in grounded)


@torch.no_grad()
def test_the_shared_prompt_forward_runs_under_a_lora_adapter(controller):
    """SFT with LoRA wraps the controller in PEFT: the shared-prompt forward finds the rope index and the cache
    argument under the wrapper and gives the wrapped model's own logits."""
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from foveate.training.config import CaptionTasks, GroundTasks, LoraSection, old_checkpointing_name_quiet
    from foveate.training.prefix import collate, forward_labelled
    from foveate.training.pretrain import Renderer, grounded_example

    with old_checkpointing_name_quiet():
        model = get_peft_model(AutoModelForImageTextToText.from_pretrained(controller), LoraSection().peft_config())
    model.eval()
    renderer = Renderer(AutoProcessor.from_pretrained(controller))
    rng = np.random.default_rng(9)
    group = [renderer(grounded_example(rng, "train", CaptionTasks(), GroundTasks())).inputs for _ in range(2)]
    for each in (True, False):
        out = forward_labelled(model, group, renderer.pad_id, each=each)
        batch = {k: v for k, v in collate(group, renderer.pad_id).items() if k != "labels"}
        whole = model(**batch).logits[:, out.offset :]
        assert out.offset > 500
        torch.testing.assert_close(out.logits, whole[out.scored], atol=1e-4, rtol=1e-4)


def test_caption_first_steps_draw_captions_only(sampler):
    from foveate.training.config import PretrainRunConfig

    rng = np.random.default_rng(0)
    assert {e.kind for e in sampler.draw(rng, 8, captions_only=True)} == {"caption"}
    with pytest.raises(ValueError, match="caption_first_steps"):
        PretrainRunConfig(model={"path": "x"}, steps=10, caption_first_steps=10)


def test_the_reading_rate_raises_the_language_model_once_reading_starts():
    from foveate.training.config import PretrainRunConfig
    from foveate.training.pretrain import _lr_factor

    config = PretrainRunConfig(model={"path": "x"}, steps=100, caption_first_steps=40, warmup_steps=10)
    for step in (0, 10, 39):  # captions only: every part at its own schedule
        assert _lr_factor(config, step, raised=3.0) == _lr_factor(config, step)
    for step in (40, 70, 99):  # reading: the language model at three times the rate, decaying alike
        assert _lr_factor(config, step, raised=3.0) == pytest.approx(3 * _lr_factor(config, step))
    assert _lr_factor(config, 99) < _lr_factor(config, 40) == 1.0


def test_config_loads_from_yaml_and_says_how_to_fix_mistakes(tmp_path):
    from foveate.training.config import packaged_configs

    config = load_config(packaged_configs()["tiny_pretrain"], "pretrain")
    assert config.model.train_vision and config.mix.caption > 0
    assert load_config(write_config(tmp_path / "ok.yaml", {"model": {"path": "tiny"}}), "pretrain").model.train_vision
    bad = write_config(tmp_path / "bad.yaml", {"model": {"path": "tiny", "train_vision": False}})
    with pytest.raises(ConfigError, match="set model.train_vision: true"):
        load_config(bad, "pretrain")
    none = write_config(tmp_path / "none.yaml", {"model": {"path": "tiny"}, "mix": dict.fromkeys(COPY_RUN["mix"], 0)})
    with pytest.raises(ConfigError, match="at least one of"):
        load_config(none, "pretrain")


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory, controller):
    """Search episodes only (question -> retrieve call), 550 steps (held-out copy accuracy 0.28 at 400, 0.84 at 500,
    0.97 at 600 with this seed)."""
    from foveate.training.pretrain import run_pretrain

    tmp = tmp_path_factory.mktemp("pretrain")
    config = load_config(write_config(tmp / "copy.yaml", {"model": {"path": str(controller)}, **COPY_RUN}), "pretrain")
    return run_pretrain(config, tmp / "out"), tmp / "out"


def test_pretraining_teaches_copying_the_subject_of_unseen_questions(copy_run):
    result, out = copy_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["before"]["copy_accuracy"] <= 0.05
    assert metrics["after"]["copy_accuracy"] >= 0.5, metrics["after"]
    assert result.summary()["copy_accuracy_after"] == metrics["after"]["copy_accuracy"]
    assert result.losses[-1] < result.losses[0] / 10


def test_pretrained_controller_loads_and_writes_a_retrieve_call(copy_run, sampler):
    from foveate.agent.backends import load_controller
    from foveate.tools.toolbox import tool_schemas

    result, _ = copy_run
    model = load_controller(str(result.controller), max_new_tokens=60)
    episode = next(e for e in sampler.heldout() if e.kind == "read")
    generation = model.generate(episode.messages[:2], tool_schemas())
    assert [c.name for c in generation.tool_calls] == ["retrieve"], generation.text


def test_same_seed_same_run(tmp_path, controller):
    """Every family (reading stages and captions with images), a few steps, twice."""
    from safetensors.torch import load_file

    from foveate.training.pretrain import run_pretrain

    data = {"model": {"path": str(controller), "train_vision": True}, "steps": 4, "batch_size": 4, "eval_examples": 2}
    config = load_config(write_config(tmp_path / "mix.yaml", data), "pretrain")
    runs = [run_pretrain(config, tmp_path / name) for name in ("a", "b")]
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("a", "b")]
    for m in metrics:
        m.pop("seconds")
    assert metrics[0] == metrics[1]
    assert runs[0].losses == runs[1].losses
    assert {"read_loss", "caption_loss"} <= set(metrics[0]["after"])
    before, after = load_file(controller / "model.safetensors"), load_file(runs[0].controller / "model.safetensors")
    vision = [k for k in before if ".visual." in f".{k}" or k.startswith("visual.")]
    assert vision and any(not torch.equal(before[k], after[k]) for k in vision)


class Interrupted(Exception):
    pass


def _stop_at(stop: int):
    def progress(step: int, steps: int, loss: float) -> None:
        if step == stop:
            raise Interrupted(step)

    return progress


def test_an_interrupted_run_resumes_from_its_last_saved_step_and_ends_as_an_uninterrupted_one(tmp_path, controller):
    """Every family, a state saved every 2 steps, stopped during step 3's report (step 3 is lost), then the same
    call again: it goes on from step 2 and ends with the uninterrupted run's weights, losses and scores."""
    from safetensors.torch import load_file

    from foveate.training.pretrain import RESUME_FILE, run_pretrain

    data = {
        "model": {"path": str(controller), "train_vision": True},
        "steps": 5,
        "batch_size": 4,
        "eval_examples": 2,
        "eval_every": 2,
        "checkpoint_every": 2,
    }
    config = load_config(write_config(tmp_path / "mix.yaml", data), "pretrain")
    whole = run_pretrain(config, tmp_path / "whole")
    assert not (tmp_path / "whole" / RESUME_FILE).exists()

    with pytest.raises(Interrupted):
        run_pretrain(config, tmp_path / "resumed", _stop_at(3))
    assert (tmp_path / "resumed" / RESUME_FILE).is_file()
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    seen = []
    resumed = run_pretrain(config, tmp_path / "resumed", lambda step, steps, loss: seen.append(step))
    assert seen == [3, 4, 5]
    assert resumed.losses == whole.losses and (resumed.before, resumed.after) == (whole.before, whole.after)
    a, b = load_file(whole.controller / "model.safetensors"), load_file(resumed.controller / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("whole", "resumed")]
    assert [m.pop("resumed_at") for m in metrics] == [[], [2]]
    assert metrics[1].pop("seconds") > 0 and metrics[0].pop("seconds") > 0
    assert metrics[0] == metrics[1]
    assert not (tmp_path / "resumed" / RESUME_FILE).exists()


def test_a_saved_state_of_another_config_is_not_resumed(tmp_path, controller):
    from foveate.memory.errors import FoveateError
    from foveate.training.pretrain import run_pretrain

    data = {
        "model": {"path": str(controller)},
        "mix": COPY_RUN["mix"],
        "steps": 3,
        "batch_size": 2,
        "eval_examples": 2,
        "checkpoint_every": 1,
    }
    with pytest.raises(Interrupted):
        run_pretrain(load_config(write_config(tmp_path / "a.yaml", data), "pretrain"), tmp_path / "out", _stop_at(1))
    other = load_config(write_config(tmp_path / "b.yaml", data | {"learning_rate": 1e-3}), "pretrain")
    with pytest.raises(FoveateError, match="another config .*learning_rate"):
        run_pretrain(other, tmp_path / "out")
    # what does not change training may change: the log and checkpoint intervals
    quiet = load_config(write_config(tmp_path / "c.yaml", data | {"log_every": 50, "checkpoint_every": 0}), "pretrain")
    assert run_pretrain(quiet, tmp_path / "out").steps == 3
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["resumed_at"] == [1]


def test_the_controller_learns_to_see_the_colour_of_a_whole_frame(tiny_controller_dir):
    """The vision path carries what the frames show: a frame of one colour is named right within 100 steps
    (chance 1/7). Objects of the world's size are another matter (training/seeing.py, docs/results.md)."""
    from foveate.training.seeing import probe

    curve = probe(str(tiny_controller_dir), side=0, steps=100, every=100)
    assert curve[-1]["colour"] >= 0.9, curve


def test_the_step_timer_times_a_preset(tmp_path):
    from foveate.training.pretrain_step import time_steps

    preset = tmp_path / "small.yaml"
    preset.write_text(
        "hidden: 32\nlayers: 1\nvocab: 600\nschemas_in_vocab: false\n"
        "pretrain: {batch_size: 2, mix: {ground: 1, cite: 1}}\n"
    )
    result = time_steps(str(preset), steps=1, fingerprint=True)
    assert result["batch_size"] == 2 and result["batch"] == "mixed" and result["mean_seconds"] > 0
    # fingerprints: the same seed draws and trains alike, another seed draws other data
    prints = [result["fingerprints"], time_steps(str(preset), steps=1, fingerprint=True)["fingerprints"]]
    assert len(prints[0]) == 3 and prints[0] == prints[1] and len({h for h, _ in prints[0]}) == 3
    assert time_steps(str(preset), steps=1, seed=1, fingerprint=True)["fingerprints"][0][0] != prints[0][0][0]
    # the data alone: the same batches, no loss
    data = time_steps(str(preset), steps=1, fingerprint=True, data_only=True)
    assert data["timed"] == "drawing and rendering" and data["mean_seconds"] > 0
    assert data["fingerprints"] == [[h, None] for h, _ in prints[0]]


def test_the_letter_probe_scores_the_letter_of_the_option_its_words_name(controller):
    from foveate.agent.answer import LETTERS, parse_answer
    from foveate.training.letter_probe import example, probe

    rng = np.random.default_rng(0)
    for options_format in ("lines", "json", "lines", "json"):
        ex = example(rng, ["red star", "blue circle"], options_format)
        question, reply = (m["content"][0]["text"] for m in ex.messages)
        if options_format == "json":
            options = list(json.loads(question[question.index("Options: ") + 9 :]).values())
        else:
            options = [x[3:] for x in question.splitlines() if len(x) > 2 and x[1:3] == ". "]
        skills = {t.skill: reply[t.start : t.end] for t in ex.targets}
        assert skills["letter"] == LETTERS[options.index(skills["said"])]  # the letter of the words' option
        assert skills["said"] in reply.split("\n")[0]  # the words are the description's
        assert parse_answer(reply, options).choice == skills["letter"]
    rows = list(probe(str(controller), steps=2, batch_size=2, eval_every=1, heldout=4))
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(0 <= r["said"] <= 1 and 0 <= r["letter"] <= 1 for r in rows)


def test_the_reading_probe_scores_every_copied_span_and_names_what_was_written(controller):
    """The probe scores the held-out episodes' targets (five letters a list query, one letter an order answer)
    and reports, for the answer-step skills, gold -> written pairs that add up to the skill's count."""
    from foveate.training.reading_probe import main, probe

    report = probe(controller, episodes=3, order=2, seed=0)
    skills = report["skills"]
    assert skills["order"]["n"] == 2 and skills["queries"]["n"] == 10
    assert skills["query"]["n"] >= 3  # one retrieve a plain episode, two when it searches again
    assert all(0 <= s["right"] <= s["n"] for s in skills.values())
    for skill, written in report["written"].items():
        assert sum(written.values()) == skills[skill]["n"]
        assert (
            sum(int(g == w) * c for (g, w), c in ((p.split(" -> "), c) for p, c in written.items()))
            == (skills[skill]["right"])
        )
    assert sum(report["order_letter_is"].values()) == 2
    by_kind = report["said_by_kind"].values()
    assert sum(k["n"] for k in by_kind) == skills["said"]["n"]
    assert sum(k["right"] for k in by_kind) == skills["said"]["right"]
    assert report["p_gold"]  # seed 0's three episodes describe a direction
    for key, p in report["p_gold"].items():  # the gold word's share among the words of its kind
        assert key in ("said_colour", "said_direction", "motion_direction")
        assert 0 < p["mean"] < 1 and p["n"] >= 1 and p["chance"] in (0.25, round(1 / 7, 3))
    looked = probe(controller, episodes=3, order=0, seed=0, attention=True)
    for key, p in looked["p_gold"].items():  # the eager kernel that returns the weights scores the same
        assert p["mean"] == pytest.approx(report["p_gold"][key]["mean"], abs=0.002)
    config = json.loads((Path(controller) / "config.json").read_text())["text_config"]
    shape = [config["num_hidden_layers"], config["num_attention_heads"]]
    assert looked["attention_to_source"]
    for key, seen in looked["attention_to_source"].items():  # a share of one head's weight at one position
        assert key.split("_")[0] in ("said", "motion") and seen["n"] >= 1
        assert [len(seen["per_head"]), len(seen["per_head"][0])] == shape
        assert all(0 <= x <= 1 for row in seen["per_head"] for x in row) and seen["best"] == max(
            map(max, seen["per_head"])
        )
    with pytest.raises(SystemExit):
        main(["--help"])
    with pytest.raises(SystemExit) as exit:
        main([str(Path(controller).parent / "missing")])
    assert exit.value.code == 2  # a usage error, before anything is loaded
    with pytest.raises(SystemExit) as exit:
        main([str(controller), "--preset", "no-such-preset"])
    assert exit.value.code == 2


def test_a_led_in_caption_scores_the_same_colour_further_from_the_frame():
    from foveate.training.config import CaptionTasks
    from foveate.training.grounding_probe import led_in
    from foveate.training.pretrain import DESCRIBED, caption_example

    rng = np.random.default_rng(2)
    ex = next(e for e in (caption_example(rng, "val", CaptionTasks()) for _ in range(50)) if e.targets)
    led = led_in(ex)
    before, after = ex.messages[1]["content"][0]["text"], led.messages[1]["content"][0]["text"]
    assert after == DESCRIBED + before and led.messages[0]["content"] is ex.messages[0]["content"]
    assert [after[t.start : t.end] for t in led.targets] == [before[t.start : t.end] for t in ex.targets]


def test_the_grounding_probe_scores_the_colour_a_zoom_shows_with_its_frames_real_blank_or_swapped(controller):
    """Each colour episode's target is the colour its description names, an option of its question, the
    colour of the sprite its zoom shows; the variants change the images only, and the probe reports a
    rate for each."""
    from foveate.evals.synthetic.events import COLOURS
    from foveate.training.grounding_probe import VARIANTS, main, probe, variants
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import colour_episodes

    config = load_pipeline_config("cpu").pretrain_config(controller)
    episodes = colour_episodes(config, 3, seed=0)
    for ex in episodes:
        final = ex.messages[-1]["content"][0]["text"]
        seen, answer = ex.targets
        colour = final[seen.start : seen.end]
        assert (seen.skill, answer.skill, final[answer.start : answer.end]) == ("seen", "answer", colour)
        assert colour in COLOURS and f'"answer": "{colour}"' in final
        zoom = [m for m in ex.messages if m["role"] == "tool"][-1]
        pixels = np.concatenate(
            [np.asarray(b["image"]).reshape(-1, 3) for b in zoom["content"] if b["type"] == "image"]
        )
        assert (np.abs(pixels.astype(int) - COLOURS[colour]).sum(1) < 30).sum() > 20  # the sprite is in the frames
    ways = variants(episodes)
    assert list(ways) == list(VARIANTS) and all(len(v) == 3 for v in ways.values())

    def images(ex, tool_only=False):
        msgs = [m for m in ex.messages if m["role"] == "tool"][-1:] if tool_only else ex.messages
        return [
            np.asarray(b["image"])
            for m in msgs
            if isinstance(m["content"], list)
            for b in m["content"]
            if b.get("type") == "image"
        ]

    for k, ex in enumerate(episodes):
        assert all(im.max() == 0 for im in images(ways["blank_zoom"][k], tool_only=True))
        assert all(im.max() == 0 for im in images(ways["blank_all"][k]))
        assert any(im.max() > 0 for im in images(ex))  # the real episode is untouched
        donor = images(episodes[(k + 1) % 3], tool_only=True)
        assert donor and len(images(ways["other_zoom"][k], tool_only=True)) == len(images(ex, tool_only=True))
        assert all(any(np.array_equal(im, d) for d in donor) for im in images(ways["other_zoom"][k], tool_only=True))
        assert [m["content"][0]["text"] for m in ways["other_zoom"][k].messages if m["role"] == "assistant"] == [
            m["content"][0]["text"] for m in ex.messages if m["role"] == "assistant"
        ]
    report = probe(str(controller), episodes=2, seed=0)
    assert report["episodes"] == 2 and 0 <= report["caption_colour"] <= 1
    assert 0 <= report["caption_colour_lead_in"] <= 1
    assert all(0 <= report[skill][v] <= 1 for skill in ("seen", "answer") for v in VARIANTS)
    with pytest.raises(SystemExit):
        main(["--help"])


def test_colour_episodes_keeps_an_episode_found_on_its_last_draw(monkeypatch):
    """The n-th colour episode may come on the last of the ``200 n`` draws; it is returned, not refused."""
    import foveate.training.pretrain as pretrain
    from foveate.memory.errors import FoveateError
    from foveate.training.pipeline import load_pipeline_config

    config = load_pipeline_config("cpu").pretrain_config("unused")
    colour = pretrain.colour_episodes(config, 1, seed=0)[0]
    other = pretrain.Example("ground", [{}, {"content": [{"text": "When did the red star appear?"}]}], [])
    draws = iter([other] * 199 + [colour])
    monkeypatch.setattr(pretrain, "grounded_example", lambda *args: next(draws))
    assert pretrain.colour_episodes(config, 1, seed=0)[0] is colour
    draws = iter([other] * 200)
    with pytest.raises(FoveateError, match="only 0 colour episodes in 200 draws"):
        pretrain.colour_episodes(config, 1, seed=0)


def test_batches_drawn_by_workers_are_the_same_for_any_number_of_them_and_resume(tmp_path, controller):
    """draw_workers: each step's batch from its own generator, so one worker and two train alike, a run
    stopped under two workers resumes under one and ends as the uninterrupted run; the loop's own drawing
    (draw_workers 0) gives other batches."""
    from safetensors.torch import load_file

    from foveate.training.pretrain import RESUME_FILE, run_pretrain

    data = {
        "model": {"path": str(controller), "train_vision": True},
        "steps": 4,
        "batch_size": 3,
        "eval_examples": 2,
        "checkpoint_every": 2,
        "caption_first_steps": 1,
    }

    def config(workers: int):
        return load_config(write_config(tmp_path / f"w{workers}.yaml", data | {"draw_workers": workers}), "pretrain")

    one = run_pretrain(config(1), tmp_path / "one")
    with pytest.raises(Interrupted):
        run_pretrain(config(2), tmp_path / "two", _stop_at(3))
    assert (tmp_path / "two" / RESUME_FILE).is_file()
    resumed = run_pretrain(config(1), tmp_path / "two")
    assert resumed.losses == one.losses and resumed.after == one.after
    a, b = load_file(one.controller / "model.safetensors"), load_file(resumed.controller / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the loop's one generator draws other batches
    assert run_pretrain(config(0), tmp_path / "loop").losses[1:] != one.losses[1:]


def test_a_killed_batch_worker_stops_pretraining_with_an_error(controller):
    import os
    import signal

    from transformers import AutoProcessor

    from foveate.training.config import PretrainRunConfig
    from foveate.training.prefetch import Prefetched

    config = PretrainRunConfig(model={"path": str(controller)}, steps=50, batch_size=2, caption_first_steps=49)
    with Prefetched(config, AutoProcessor.from_pretrained(controller), start=0, workers=2, depth=1) as batches:
        it = iter(batches)
        assert next(it)[0] == 1
        os.kill(batches._processes[1].pid, signal.SIGKILL)  # the worker of the even steps
        # what it put before it died still arrives (a few batches at most), then its next step cannot
        with pytest.raises(RuntimeError, match=r"drawing step \d*[02468]'s batch stopped \(exit code -9\)"):
            for _ in range(20):
                next(it)


def test_a_worker_that_cannot_draw_stops_pretraining_with_its_error():
    from foveate.training.config import PretrainRunConfig
    from foveate.training.prefetch import Prefetched

    config = PretrainRunConfig(model={"path": "unused"}, steps=3, batch_size=2)
    with Prefetched(config, processor=None, start=0, workers=1) as batches:  # no processor to render with
        with pytest.raises(RuntimeError, match="drawing a pretraining batch failed: AttributeError"):
            next(iter(batches))


def test_the_copy_drill_trains_only_on_episodes_that_copy_a_colour_or_a_motion_line(controller, tmp_path):
    """The drill keeps the reading episodes whose answer copies a colour or whose description copies the motion
    line's direction, changes the weights, and reports the probe before and after."""
    import torch
    from safetensors.torch import load_file

    from foveate.training.copy_drill import drill, main, needs_copy
    from foveate.training.pipeline import load_pipeline_config
    from foveate.training.pretrain import ReadEpisode, subjects
    from foveate.training.reading_probe import word_kind

    read = load_pipeline_config("cpu").pretrain_config(controller).read.model_copy(update={"p_order": 0.0})
    trained, _ = subjects(read.heldout_fraction)
    rng = np.random.default_rng(0)
    kept = 0
    for _ in range(60):
        ex = ReadEpisode(rng, read).build(trained[int(rng.integers(len(trained)))], "cite", trained)
        last = ex.messages[-1]["content"][0]["text"]
        said = [last[t.start : t.end] for t in ex.targets if t.skill == "said"]
        colour = any(word_kind(w) == "colour" for w in said)
        motion = any(t.skill == "motion" for t in ex.targets)
        assert needs_copy(ex) == (colour or motion)
        kept += needs_copy(ex)
    assert 0 < kept < 60  # a counting or "when" question is not drilled

    steps = []
    report = drill(
        controller,
        tmp_path,
        read,
        steps=2,
        copy_weight=5.0,
        episodes=3,
        batch_size=2,
        progress=lambda step, total, loss: steps.append((step, total)),
    )
    assert steps == [(1, 2), (2, 2)]
    assert json.loads((tmp_path / "metrics.json").read_text())["loss_every_50"] == report["loss_every_50"]
    start, end = (
        load_file(Path(controller) / "model.safetensors"),
        load_file(tmp_path / "controller" / "model.safetensors"),
    )
    assert any(not torch.equal(start[k], end[k]) for k in start)
    assert len(report["loss_every_50"]) == 1 and report["loss_every_50"][0] > 0
    assert set(report["before"]) == set(report["after"]) == {"p_gold", "said_by_kind"}
    with pytest.raises(SystemExit) as exit:
        main([str(controller), "-o", str(tmp_path), "--copy-weight", "0"])
    assert exit.value.code == 2
