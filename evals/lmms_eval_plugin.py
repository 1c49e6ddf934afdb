"""lmms-eval model plugin: ``lmms-eval --model foveate --model_args controller=...,embedder=...``.

lmms-eval (0.7.3) finds external models through the ``lmms_eval.models`` entry-point group: each
entry point yields a ``ModelManifest`` naming the class (``lmms_eval/models/registry_v2.py``,
``load_entrypoint_manifests``). pyproject.toml points that group at :func:`manifest`.

Each document runs Foveate's agent loop: the video that the task's ``doc_to_visual`` returns is
ingested once (disk cache, plus the last few memories kept in process), and the question and
options come from the document's ``question``/``options`` fields, or from the prompt text when
the document has none. Multiple-choice documents get the option letter back, the form the
tasks' scorers (``extract_mcq_answer``) read; open questions get the answer text.

lmms-eval pins ``av<16``; Foveate gives the same overview with PyAV 15 and 18, so the plugin is
meant for a virtual environment layered on Foveate's (README.md, "lmms-eval").
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from lmms_eval.api.instance import GenerationResult, TokenCounts
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest

from foveate.agent.backends import DEFAULT_CONTROLLER, load_controller
from foveate.agent.config import agent_settings
from foveate.agent.graph import answer_question
from foveate.memory import DEFAULT_EMBEDDER, VideoMemory, ingest, load_embedder
from foveate.memory.errors import FoveateError

logger = logging.getLogger(__name__)

MODEL_ID = "foveate"
# Memories kept in process: lmms-eval may reorder documents, and a video's questions often sit together.
_MEMORIES_KEPT = 4
# "A. red", "(B) blue", "C: green": an option line in a prompt, or a lettered option in a document.
_LETTERED = re.compile(r"^\s*\(?([A-J])[.):]\s*(.*\S)\s*$")


def manifest() -> ModelManifest:
    """The entry point lmms-eval loads: model id ``foveate``, a simple (doc_to_visual) model."""
    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.{FoveateLMMS.__name__}")


def _strip_letters(options: list[str]) -> list[str]:
    """Options without their "A. " prefixes, when every option carries its own letter in order."""
    found = [_LETTERED.match(o) for o in options]
    if all(m and m.group(1) == chr(ord("A") + i) for i, m in enumerate(found)):
        return [m.group(2) for m in found]
    return options


def question_and_options(doc: dict, context: str) -> tuple[str, list[str] | None]:
    """The question and its options (None for an open question) for one document.

    Documents with a ``question`` string use it and their ``options`` list; otherwise the prompt's
    lettered lines (A., B., ... in order) are the options and its other lines the question.
    """
    question, options = doc.get("question"), doc.get("options")
    if isinstance(question, str) and question.strip():
        if isinstance(options, list) and options and all(isinstance(o, str) for o in options):
            return question.strip(), _strip_letters(options)
        context_options = question_and_options({}, context)[1]
        return question.strip(), context_options
    lines, parsed = [], []
    for line in context.splitlines():
        m = _LETTERED.match(line)
        if m and m.group(1) == chr(ord("A") + len(parsed)):
            parsed.append(m.group(2))
        elif line.strip():
            lines.append(line.strip())
    return "\n".join(lines), parsed or None


def _video_path(visuals: Any) -> str | None:
    items = visuals if isinstance(visuals, (list, tuple)) else [visuals]
    return next((str(v) for v in items if isinstance(v, (str, Path)) and Path(v).is_file()), None)


class FoveateLMMS(lmms):
    """Foveate's agent loop as an lmms-eval model.

    model_args: ``controller`` (a Hugging Face id, a model directory or ``openai:MODEL@URL``),
    ``embedder`` (``openclip:ARCH/PRETRAINED`` or ``openclip:DIR``), ``max_frames``, ``max_steps``
    (defaults: the controller's trained settings, else Foveate's), ``cache_dir`` (default
    ``$FOVEATE_CACHE``, else ``~/.cache/foveate``).
    """

    is_simple = True

    def __init__(
        self,
        controller: str = DEFAULT_CONTROLLER,
        embedder: str | None = None,
        max_frames: int | None = None,
        max_steps: int | None = None,
        cache_dir: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        device: str | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            valid = "controller, embedder, max_frames, max_steps, cache_dir"
            raise ValueError(f"foveate: unknown model_args {', '.join(sorted(unknown))}; valid: {valid}")
        if str(batch_size) not in ("1", "auto"):
            logger.warning("foveate answers one document at a time; batch_size=%s is ignored", batch_size)
        self.config, self.ingest_config, embedder, _ = agent_settings(
            str(controller), embedder, max_steps=max_steps, max_frames=max_frames
        )
        self.cache_dir = cache_dir
        self.controller = load_controller(str(controller))
        self.embedder = load_embedder(embedder or DEFAULT_EMBEDDER)
        self._memories: OrderedDict[str, VideoMemory] = OrderedDict()
        logger.info("foveate: controller %s, embedder %s, %s", controller, embedder or DEFAULT_EMBEDDER, self.config)

    def _memory(self, path: str) -> VideoMemory:
        if path in self._memories:
            self._memories.move_to_end(path)
        else:
            self._memories[path] = ingest(
                path, cache_root=self.cache_dir, embedder=self.embedder, config=self.ingest_config
            )
            while len(self._memories) > _MEMORIES_KEPT:
                self._memories.popitem(last=False)
        return self._memories[path]

    def _answer(self, context: str, doc: dict, visuals: Any, qid: str) -> GenerationResult:
        path = _video_path(visuals)
        if path is None:
            logger.error("%s: doc_to_visual gave no local video file (%r); answered empty", qid, visuals)
            return GenerationResult(text="")
        question, options = question_and_options(doc, context)
        try:
            traj = answer_question(self._memory(path), question, options, self.controller, self.config, qid=qid)
        except FoveateError as exc:  # one bad video or a failed controller call loses this document only
            logger.error("%s: %s; answered empty", qid, str(exc).splitlines()[0])
            return GenerationResult(text="")
        answer = traj.answer
        text = "" if answer is None else (answer.choice if options and answer.choice else answer.text)
        logger.info("%s: %r (%d frames, %d tool calls)", qid, text, traj.frames_used, traj.tool_calls)
        return GenerationResult(text=text, token_counts=TokenCounts(traj.tokens_in, traj.tokens_out))

    def generate_until(self, requests) -> list[GenerationResult]:
        results = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            result = self._answer(context, doc, doc_to_visual(doc), f"{task}/{split}/{doc_id}")
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), result.text)
            results.append(result)
        return results

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            "foveate answers by running its agent loop and scores no continuations; "
            "use generate_until tasks (output_type: generate_until), not loglikelihood/multiple_choice ones"
        )

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError(
            "foveate answers one question per document; multi-round tasks are not supported, use generate_until tasks"
        )
