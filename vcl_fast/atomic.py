"""Atomic file writes: readers see the old file or the complete new one, never a partial one."""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator


@functools.lru_cache(maxsize=1)
def _process_umask() -> int:
    """The process umask, read once (reading it means setting it, which is not thread-safe to repeat)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_output_file(path: str | os.PathLike, folder: bool = False) -> Path:
    """``path`` as a Path, checked to be a file (``folder``: a folder, which may exist) that this process can
    create or replace (missing parent folders are made when it is written): an OSError naming ``path``
    otherwise. Commands call it before their work, so that a mistyped output does not throw the work away. The
    nearest existing folder is tried with a file made and removed at once, which also tells read-only mounts and
    pseudo-filesystems (/proc) that permission bits do not."""
    target, parent = _check_output_path(path, folder)
    try:
        fd, probe = tempfile.mkstemp(prefix=".vcl-fast-probe.", dir=parent)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write in {parent} ({exc.strerror})", str(target)) from None
    os.close(fd)
    os.unlink(probe)
    return target


def _check_output_path(path: str | os.PathLike, folder: bool) -> tuple[Path, Path]:
    """``(target, its nearest existing folder)``; the checks of :func:`check_output_file` short of the write."""
    target = Path(path)
    if target.is_dir() and not folder:
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(target))
    if target.is_file() and folder:
        raise NotADirectoryError(errno.ENOTDIR, "is a file; give a folder", str(target))
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a folder", str(target))
    return target, parent


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """Re-raise an OSError of the block naming ``target``, not the temporary file or folder made beside it."""
    try:
        yield
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(target)) from None


@contextlib.contextmanager
def _temporary_sibling(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target, _ = _check_output_path(path, folder=False)  # the temporary file made next is the write test
    with _naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes 0600, and a writer may make its file anew (safetensors does, 0600 too): give the file the
        # permissions open() would.
        os.chmod(tmp, 0o666 & ~_process_umask())
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``open(path, mode)`` that replaces ``path`` only when the block finishes without an exception."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_write needs a write mode ('w' or 'wb'), got {mode!r}")
    with _temporary_sibling(path) as tmp, open(tmp, mode.replace("x", "w"), **open_kwargs) as handle:
        yield handle


def atomic_save(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Atomically produce ``path`` with a writer that takes a file path (e.g. ``safetensors.save_file``)."""
    with _temporary_sibling(path) as tmp:
        write(tmp)


def check_new_directory(path: str | os.PathLike) -> Path:
    """``path`` as a Path; FileExistsError unless it is absent or an empty directory."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not an empty folder; choose a new output folder")
    return target


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a hidden staging directory beside ``path`` to fill; on success it is renamed to ``path``, on an
    exception it is removed and ``path`` is left untouched.

    ``path`` must be absent or an empty directory, unless ``replace``: then an existing directory there (which
    the caller has checked may go, e.g. an earlier output of the same command) is replaced as a whole, moved
    aside by one rename and deleted after the new one is in place.
    """
    target = Path(path)
    if not (replace and target.is_dir()):
        check_new_directory(target)
    with _naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(staging, 0o777 & ~_process_umask())
    try:
        yield staging
        if replace and target.is_dir():
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            target.rename(aside / target.name)
            try:
                staging.rename(target)
            except BaseException:
                (aside / target.name).rename(target)
                raise
            finally:
                shutil.rmtree(aside, ignore_errors=True)
            return
        check_new_directory(target)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
