"""Controller backends, chosen by spec: ``openai:MODEL@URL``, ``scripted:FILE.json`` (tests), else a HF id or directory."""

from __future__ import annotations

import json
from pathlib import Path

from agent.backends.base import Controller, Generation
from agent.backends.hf import DEFAULT_CONTROLLER, HFController
from agent.backends.openai_backend import OpenAIController
from agent.backends.scripted import ScriptedController
from memory.errors import ControllerError

BACKENDS: dict[str, type[Controller]] = {cls.BACKEND_NAME: cls for cls in (HFController, OpenAIController, ScriptedController)}


def load_controller(spec: str = DEFAULT_CONTROLLER, **kwargs) -> Controller:
    """Build the backend named by ``spec``."""
    if spec.startswith("openai:"):
        model, sep, url = spec[len("openai:"):].rpartition("@")
        if not sep or not model or not url:
            raise ControllerError(f"{spec}: expected openai:MODEL@URL, e.g. openai:Qwen/Qwen2.5-VL-7B-Instruct@http://localhost:8000/v1")
        return OpenAIController(model, url, **{k: v for k, v in kwargs.items() if k in ("max_tokens", "temperature")})
    if spec.startswith("scripted:"):
        path = Path(spec[len("scripted:"):])
        try:
            return ScriptedController(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ControllerError(f"{spec}: cannot read scripted outputs ({exc})") from None
    return HFController(spec, **{k: v for k, v in kwargs.items() if k in ("max_new_tokens", "temperature")})


__all__ = ["BACKENDS", "Controller", "DEFAULT_CONTROLLER", "Generation", "load_controller"]
