"""vcl_fast: video copy localization with a compiled C++/CUDA core.

Public APIs speak seconds; internals speak frame indices. Boxes are ``[q_start, r_start, q_end, r_end]``.
``Localizer``, ``LocalizationResult`` and ``Segment`` (:mod:`vcl_fast.api`) load on first use.
"""
from typing import TYPE_CHECKING, Any

from vcl_fast._version import __version__

if TYPE_CHECKING:  # type checkers see the classes; at run time they load on first use (below)
    from vcl_fast.api import LocalizationResult, Localizer, Segment

__all__ = ["LocalizationResult", "Localizer", "Segment", "__version__"]
_API = ("LocalizationResult", "Localizer", "Segment")


def __getattr__(name: str) -> Any:
    if name in _API:
        from vcl_fast import api

        return getattr(api, name)
    raise AttributeError(f"module 'vcl_fast' has no attribute {name!r}")
