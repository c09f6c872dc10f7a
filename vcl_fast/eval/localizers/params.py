"""Typed parameters of the localizers: frozen dataclasses whose fields are ``int`` or ``float``.

Every field is type-checked on construction (``int`` fields take integers only; ``float`` fields take finite
integers or floats), then the subclass checks its value ranges. Overrides come as keywords
(:func:`with_overrides`) or as ``key=value`` text from the command line (:func:`parse_overrides`); an
unknown name or a value of the wrong type is a clear error.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Iterable, Mapping, TypeVar

import numpy as np

P = TypeVar("P", bound="LocalizerParams")


@dataclasses.dataclass(frozen=True)
class LocalizerParams:
    """Base of the parameter dataclasses: checks field types, then :meth:`check_values`."""

    def __post_init__(self) -> None:
        for name, kind in self.field_types().items():
            object.__setattr__(self, name, self._typed(name, getattr(self, name), kind))
        self.check_values()

    def check_values(self) -> None:
        """Raise ValueError for out-of-range values (subclasses list their bounds with :meth:`_bounds`)."""

    @classmethod
    def field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def _typed(self, name: str, value: Any, kind: type) -> int | float:
        where = f"{type(self).__name__}.{name}"
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{where} must be {kind.__name__}, got a bool")
        if kind is int and isinstance(value, (int, np.integer)):
            return int(value)
        if kind is float and isinstance(value, (int, float, np.integer, np.floating)):
            if not math.isfinite(value):
                raise ValueError(f"{where} must be finite, got {value}")
            return float(value)
        raise TypeError(f"{where} must be {kind.__name__}, got {type(value).__name__} {value!r}")

    def _bounds(self, **bounds: tuple[float | None, float | None]) -> None:
        """Raise ValueError unless each named field lies in its inclusive ``(low, high)`` (None = open)."""
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if (low is not None and value < low) or (high is not None and value > high):
                limits = [f">= {low}"] if low is not None else []
                limits += [f"<= {high}"] if high is not None else []
                raise ValueError(f"{type(self).__name__}.{name} must be {' and '.join(limits)}, got {value}")


def _check_known(params: LocalizerParams, name: str) -> type:
    types = params.field_types()
    if name not in types:
        raise ValueError(
            f"unknown {type(params).__name__} parameter {name!r}; known parameters: {', '.join(sorted(types))}"
        )
    return types[name]


def with_overrides(params: P, overrides: Mapping[str, Any]) -> P:
    """``params`` with the named fields replaced (types and ranges checked)."""
    for name in overrides:
        _check_known(params, name)
    return dataclasses.replace(params, **overrides)


def parse_overrides(params: LocalizerParams, items: Iterable[str]) -> dict[str, int | float]:
    """Parse ``key=value`` strings (e.g. ``["min_sim=0.3", "top_k=5"]``) into overrides typed for ``params``."""
    overrides: dict[str, int | float] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name or not text:
            raise ValueError(f"parameter override must look like key=value, got {item!r}")
        kind = _check_known(params, name)
        try:
            overrides[name] = kind(text)
        except ValueError:
            raise ValueError(f"{type(params).__name__}.{name} must be {kind.__name__}, got {text!r}") from None
    return overrides
