"""Controller backends, chosen by spec: ``openai:MODEL@URL``, ``scripted:FILE.json`` (tests), ``hf:ID_OR_DIR``.

A spec without a known prefix is a Hugging Face id or a local model directory (the ``hf`` backend).
"""

from __future__ import annotations

from pathlib import Path

from foveate.agent.backends.base import Controller, ControllerError, Generation
from foveate.agent.backends.hf import DEFAULT_CONTROLLER, HFController
from foveate.agent.backends.openai_backend import OpenAIController
from foveate.agent.backends.scripted import ScriptedController

BACKENDS: dict[str, type[Controller]] = {
    HFController.BACKEND_NAME: HFController,
    OpenAIController.BACKEND_NAME: OpenAIController,
    ScriptedController.BACKEND_NAME: ScriptedController,
}


def _resolve(spec: str) -> tuple[type[Controller], str]:
    """The backend class named by ``spec``'s prefix and the rest of the spec."""
    if not spec or not spec.strip():
        raise ControllerError(
            "the controller spec is empty; give a Hugging Face id, a model directory or openai:MODEL@URL"
        )
    name, sep, target = spec.partition(":")
    if not sep or Path(spec).exists():  # ids and directories (which may hold a colon) go to transformers
        name, target = HFController.BACKEND_NAME, spec
    elif name not in BACKENDS:
        raise ControllerError(
            f"{spec}: unknown controller backend {name!r}; valid prefixes: "
            f"{', '.join(f'{n}:' for n in BACKENDS)} (or a Hugging Face id / model directory)"
        )
    return BACKENDS[name], target


def check_controller(spec: str = DEFAULT_CONTROLLER) -> None:
    """Raise ControllerError (one line) when ``spec`` is malformed or its model is clearly missing; no model load."""
    cls, target = _resolve(spec)
    cls.check(target)


def load_controller(spec: str = DEFAULT_CONTROLLER, **options) -> Controller:
    """Build the backend named by ``spec``'s prefix; ``options`` the backend does not take are ignored."""
    cls, target = _resolve(spec)
    return cls.from_spec(target, **{k: v for k, v in options.items() if k in cls.OPTIONS})


__all__ = [
    "BACKENDS",
    "Controller",
    "ControllerError",
    "DEFAULT_CONTROLLER",
    "Generation",
    "check_controller",
    "load_controller",
]
