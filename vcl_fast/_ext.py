"""Loads the compiled core ``vcl_fast._C`` without ever failing the import of ``vcl_fast``.

``extension()`` returns the module or None; ``extension_error()`` says why it is missing or unusable.
Ops fall back to their references with one warning per op (``warn_fallback``).
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType

_module: ModuleType | None = None
_error: str | None = None
_loaded = False
_warned: set[str] = set()


def _load() -> None:
    global _module, _error, _loaded
    _loaded = True
    try:
        _module = importlib.import_module("vcl_fast._C")
    except Exception as exc:  # any failure (missing file, bad symbol, ABI) means "unavailable"
        _module, _error = None, f"{type(exc).__name__}: {exc}"


def extension() -> ModuleType | None:
    """The compiled module, or None when it is missing or failed to load."""
    if not _loaded:
        _load()
    return _module


def extension_error() -> str | None:
    """Why the compiled module is unavailable (None when it loaded)."""
    extension()
    return _error


def cuda_available() -> bool:
    """True when CUDA kernels are compiled in and a CUDA device is visible."""
    ext = extension()
    return ext is not None and ext.cuda_compiled() and ext.cuda_device_count() > 0


def warn_fallback(op: str, reason: str | None) -> None:
    """Warn once per op that it runs its slow reference instead of the compiled kernel (``reason``: why, as
    :func:`extension_error` says, None when not known)."""
    if op in _warned:
        return
    _warned.add(op)
    warnings.warn(
        f"vcl_fast.ops.{op}: compiled kernel unavailable ({reason or 'no reason known'}); using the slower "
        "reference. Reinstall vcl_fast with a C++ compiler to build it (see `vcl-fast info`).",
        RuntimeWarning,
        stacklevel=3,
    )
