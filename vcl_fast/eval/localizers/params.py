"""Typed parameters of the localizers: frozen dataclasses whose fields are ``int`` or ``float``.

Every field is type-checked on construction (``int`` fields take integers only; ``float`` fields take finite
integers or floats), then the subclass checks its value ranges. Overrides (keywords, or ``key=value``
text from the command line) go through :func:`vcl_fast.config.apply_overrides` like every other config.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

import numpy as np

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
