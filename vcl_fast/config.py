"""Experiment configs: frozen dataclasses with small named presets and type-checked overrides.

Overrides come as ``key=value`` strings (command line) or as a mapping of typed values (Python); nested
config groups are addressed with dots (``model.width=0.25``). Supported field types: bool, int, float, str,
``tuple[int | float | str, ...]`` and nested config dataclasses. Unknown keys or presets and text that
does not parse raise ``ConfigError`` (a ValueError) naming the key and the valid choices; a typed value of
the wrong type raises TypeError.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any, Iterable, Mapping, TypeVar

import numpy as np

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """An unknown config key or preset, a malformed override, or a value of the wrong type."""


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["lr=1e-4", "model.depth=6"]`` -> ``{"lr": "1e-4", "model.depth": "6"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        out[key.strip()] = value.strip()
    return out


def _convert(where: str, value: Any, kind: Any) -> Any:
    """``value`` as field type ``kind``: text is parsed (ConfigError when it does not parse), typed values
    are checked (TypeError for a wrong type; numpy scalars count as their Python type)."""
    if isinstance(value, np.generic):
        value = value.item()
    if typing.get_origin(kind) is tuple:
        item_type = typing.get_args(kind)[0]
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list of {item_type.__name__}, got {type(value).__name__} {value!r}")
        return tuple(_convert(where, v, item_type) for v in value)
    if kind not in (bool, int, float, str):
        raise ConfigError(f"{where}: unsupported config field type {kind!r}")
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool and text in _TRUE | _FALSE:
            return text in _TRUE
        try:
            if kind is not bool:
                return kind(text)
        except ValueError:
            pass
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{where} must be {kind.__name__}, got {type(value).__name__} {value!r}")


def _replace_path(config: Any, path: list[str], value: Any, key: str) -> Any:
    names = [f.name for f in dataclasses.fields(config)]
    if path[0] not in names:
        raise ConfigError(f"unknown {type(config).__name__} key {key!r}; valid keys: {', '.join(names)}")
    kind = typing.get_type_hints(type(config))[path[0]]
    if dataclasses.is_dataclass(kind):
        if len(path) == 1:
            raise ConfigError(f"config key {key!r} is a group; set one of its fields ({key}.NAME=value)")
        new = _replace_path(getattr(config, path[0]), path[1:], value, key)
    elif len(path) > 1:
        raise ConfigError(f"config key {path[0]!r} in {key!r} has no sub-keys")
    else:
        new = _convert(f"{type(config).__name__}.{path[0]}", value, kind)
    return dataclasses.replace(config, **{path[0]: new})


def apply_overrides(config: C, overrides: Mapping[str, Any] | Iterable[str] | None) -> C:
    """A copy of dataclass ``config`` with overrides applied in order (the dataclass re-validates itself)."""
    if overrides is None:
        return config
    items = overrides.items() if isinstance(overrides, Mapping) else parse_overrides(overrides).items()
    for key, value in items:
        config = _replace_path(config, key.split("."), value, key)
    return config


def preset(presets: Mapping[str, C], name: str, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> C:
    """Preset ``name`` of ``presets`` with ``overrides`` applied."""
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return apply_overrides(presets[name], overrides)


def replace_fields(config: C, **changes: Any) -> C:
    """``dataclasses.replace`` with typed values checked like overrides."""
    return apply_overrides(config, changes)


def config_from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
    """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output (lists become tuples)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}; valid keys: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        kind = hints[name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kwargs[name] = config_from_dict(kind, value)
        elif typing.get_origin(kind) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
