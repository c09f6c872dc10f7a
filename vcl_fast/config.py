"""Experiment configs: one base dataclass per experiment, small named presets, type-checked ``key=value`` overrides.

A preset is a plain dataclass instance; :func:`apply_overrides` returns a copy with fields replaced from
strings (command line) or typed values (Python). Only ``int``, ``float``, ``bool``, ``str`` and
``tuple[float, ...]``/``tuple[int, ...]`` fields are supported, which is all our configs use.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, Sequence, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["lr=1e-4", "depth=6"]`` -> ``{"lr": "1e-4", "depth": "6"}``; raises ValueError on a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


def _convert(name: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is tuple:
        (item_type, *rest) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a comma-separated list of {item_type.__name__}, got {value!r}")
        return tuple(_convert(name, v, item_type) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise TypeError(f"{name} must be a bool (true/false), got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise TypeError(f"{name} must be {annotation.__name__}, got bool {value!r}")
        if isinstance(value, str):
            try:
                return annotation(value)
            except ValueError:
                raise TypeError(f"{name} must be {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, int):
            return value
        if annotation is float and isinstance(value, (int, float)):
            return float(value)
        raise TypeError(f"{name} must be {annotation.__name__}, got {type(value).__name__} {value!r}")
    if annotation is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be str, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"{name}: unsupported config field type {annotation!r}")


def apply_overrides(config: T, overrides: Mapping[str, Any]) -> T:
    """Return a copy of dataclass ``config`` with ``overrides`` applied (strings are parsed to the field type).

    Raises KeyError for an unknown key (listing the valid ones) and TypeError for a value of the wrong type.
    """
    hints = typing.get_type_hints(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise KeyError(f"unknown {type(config).__name__} key {key!r}; valid keys: {', '.join(names)}")
        changes[key] = _convert(key, value, hints[key])
    return dataclasses.replace(config, **changes)


def preset(presets: Mapping[str, T], name: str, overrides: Mapping[str, Any] | None = None) -> T:
    """Look up preset ``name`` in ``presets`` and apply ``overrides``; unknown names raise KeyError."""
    if name not in presets:
        raise KeyError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return apply_overrides(presets[name], overrides or {})
