"""Experiment configs are frozen dataclasses with named presets; this module rebuilds them from JSON dicts
and applies type-checked overrides (``key=value`` strings from the command line, nested keys with dots:
``model.width=0.25``)."""
from __future__ import annotations

import typing
from dataclasses import fields, is_dataclass, replace
from typing import Iterable, TypeVar

C = TypeVar("C")


def _check_keys(cls, keys: Iterable[str], where: str = "") -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {unknown}{where}; known keys are {sorted(known)}")


def replace_fields(config: C, **changes) -> C:
    """``dataclasses.replace`` with a clear ValueError for unknown field names."""
    _check_keys(type(config), changes)
    return replace(config, **changes)


def config_from_dict(cls: type[C], values: dict) -> C:
    """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output (lists become tuples)."""
    _check_keys(cls, values)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        kind = hints[name]
        if is_dataclass(kind):
            kwargs[name] = config_from_dict(kind, value)
        elif typing.get_origin(kind) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _parse_value(text: str, kind, key: str):
    """``text`` as a value of type ``kind`` (bool, int, float, str or tuple[int, ...])."""
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            return tuple(item(v) for v in text.split(",") if v.strip())
        return kind(text)
    except ValueError:
        raise ValueError(f"override {key}={text!r}: expected a value of type "
                         f"{getattr(kind, '__name__', kind)}") from None


def _replace_path(config, path: list[str], text: str, key: str):
    names = {f.name for f in fields(config)}
    if path[0] not in names:
        raise ValueError(f"unknown config key {key!r}; known keys here are {sorted(names)}")
    kind = typing.get_type_hints(type(config))[path[0]]
    if is_dataclass(kind):
        if len(path) == 1:
            raise ValueError(f"config key {key!r} is a group; set one of its fields ({key}.NAME=value)")
        value = _replace_path(getattr(config, path[0]), path[1:], text, key)
    elif len(path) > 1:
        raise ValueError(f"config key {path[0]!r} in {key!r} has no sub-keys")
    else:
        value = _parse_value(text, kind, key)
    return replace(config, **{path[0]: value})


def apply_overrides(config: C, overrides: Iterable[str]) -> C:
    """``config`` with ``key=value`` overrides applied in order (the dataclass re-validates itself)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value")
        config = _replace_path(config, key.split("."), text, key)
    return config
