"""vcl_fast: video copy localization with a compiled C++/CUDA core.

Public APIs speak seconds; internals speak frame indices. Boxes are ``[q_start, r_start, q_end, r_end]``.
"""
from vcl_fast._version import __version__

__all__ = ["__version__"]
