"""How a tool is declared once: a typed method, its Google-style docstring, and ``Range`` bounds.

``@tool`` turns a ``VideoToolbox`` method into a tool. The method's signature is the only place
its parameters, types, defaults and ranges are written:

- ``Annotated[int, Range(1, 8)]`` bounds a parameter; the bound is appended to that parameter's
  ``Args:`` line of the docstring, so the schema the model reads (transformers'
  ``get_json_schema``, which TRL's ``environment_factory`` also uses) states it, and the same bound
  is checked when the tool is called.
- Arguments the model produced are bound to the signature and coerced to the annotated type
  (``str`` non-empty, ``int``, finite ``float``, ``str | list[str]``: one text or a non-empty list
  of them) before the body runs; a bad value raises
  :class:`ToolInputError`, whose message goes back to the model. ``X | None = None`` makes a
  parameter optional: None (given or defaulted) reaches the body as None, and the body decides
  which combinations of optional parameters are valid.
- The body returns ``(blocks, frames spent)``; the tool returns the blocks, with the budget line
  appended, and the call is recorded by the toolbox.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from foveate.memory.blocks import ContentBlock

Observation = tuple[list[ContentBlock], int]  # (blocks shown to the model, frames spent)
TEXTS = (str, list[str])  # a parameter typed ``str | list[str]``: one text, or several


class ToolInputError(ValueError):
    """A tool call's arguments are invalid; the message is shown to the model."""


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a numeric tool parameter; ``low_open`` makes the lower bound exclusive."""

    low: float
    high: float
    low_open: bool = False

    def describe(self) -> str:
        return (
            f"more than {self.low:g} and at most {self.high:g}" if self.low_open else f"{self.low:g} to {self.high:g}"
        )

    def check(self, name: str, value: float) -> None:
        if value < self.low or (self.low_open and value == self.low) or value > self.high:
            raise ToolInputError(f"{name} must be {self.describe()} (got {value:g})")


def _coerce(name: str, kind: type, value: Any) -> Any:
    if kind == TEXTS:
        if not isinstance(value, list):
            return _coerce(name, str, value)
        if not value:
            raise ToolInputError(f"{name} must be a non-empty text or a non-empty list of texts")
        return [_coerce(f"{name}[{i}]", str, v) for i, v in enumerate(value)]
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ToolInputError(f"{name} must be a non-empty text")
        return value.strip()
    try:
        if isinstance(value, bool) or value is None:
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ToolInputError(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise ToolInputError(f"{name} must be finite")
    if kind is int:
        if number != int(number):
            raise ToolInputError(f"{name} must be a whole number (got {number:g})")
        return int(number)
    return number


def _parameters(fn: Callable) -> dict[str, tuple[type, Range | None]]:
    """``{name: (type, range)}`` for every parameter after ``self``, from the (Annotated) type hints;
    ``X | None`` gives ``X`` (whether None is allowed is read from the default); ``str | list[str]``
    gives :data:`TEXTS`."""
    hints = get_type_hints(fn, include_extras=True)
    out = {}
    for name in list(inspect.signature(fn).parameters)[1:]:
        hint, bound = hints[name], None
        if get_origin(hint) in (Union, types.UnionType):
            kinds = tuple(a for a in get_args(hint) if a is not type(None))
            if kinds != TEXTS and len(kinds) != 1:
                raise TypeError(
                    f"tool parameter {name!r}: of unions only `X | None` and `str | list[str]` are supported"
                )
            hint = TEXTS if kinds == TEXTS else kinds[0]
        if get_origin(hint) is Annotated:
            hint, *extras = get_args(hint)
            bound = next((e for e in extras if isinstance(e, Range)), None)
        out[name] = (hint, bound)
    return out


def _document_ranges(doc: str, params: dict[str, tuple[type, Range | None]]) -> str:
    for name, (_, bound) in params.items():
        if bound is not None:
            doc, n = re.subn(rf"^(\s+{name}: .*?)\.?$", rf"\1 ({bound.describe()}).", doc, count=1, flags=re.M)
            if n != 1:
                raise TypeError(f"the docstring has no Args line for the bounded parameter {name!r}")
    return doc


def tool(fn: Callable[..., Observation]) -> Callable[..., list[ContentBlock]]:
    """Declare a toolbox method as a tool (see the module docstring)."""
    params = _parameters(fn)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args: Any, **kwargs: Any) -> list[ContentBlock]:
        arguments = dict(zip(params, args)) | kwargs  # as the caller gave them, for the call log

        def run() -> Observation:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise ToolInputError(f"bad arguments ({exc}); the parameters are {', '.join(params)}") from None
            bound.apply_defaults()
            values = {}
            for name, (kind, limits) in params.items():
                if bound.arguments[name] is None and signature.parameters[name].default is None:
                    values[name] = None
                    continue
                values[name] = _coerce(name, kind, bound.arguments[name])
                if limits is not None:
                    limits.check(name, values[name])
            return fn(self, **values)

        return self._record(fn.__name__, arguments, run)

    wrapper.__doc__ = _document_ranges(inspect.getdoc(fn) or "", params)
    wrapper.__annotations__ = {**fn.__annotations__, "return": "list[ContentBlock]"}
    wrapper.is_tool = True
    return wrapper


def tool_names(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s tools, sorted (the order TRL lists an environment's methods in)."""
    return tuple(sorted(name for name, member in inspect.getmembers(cls) if getattr(member, "is_tool", False)))
