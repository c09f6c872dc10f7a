"""Debian packages as data: download with ``apt-get download``, unpack with ``dpkg -x`` (no root, nothing
installed), and look up a file's licence in the package's machine-readable ``copyright`` file (DEP-5).

Cache layout: ``<cache>/debian/<package>/<package>_<version>_<arch>.deb`` and the unpacked tree in
``<cache>/debian/<package>/root/``; ``root/.unpacked`` marks a complete unpack.
"""
from __future__ import annotations

import fnmatch
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

UNPACKED_MARKER = ".unpacked"


def package_root(package: str, cache_dir: str | Path) -> Path:
    """Where ``package`` is (or would be) unpacked inside ``cache_dir``."""
    return Path(cache_dir) / "debian" / package / "root"


def fetch_package(package: str, cache_dir: str | Path) -> Path:
    """Download and unpack ``package`` into the cache (once); return the unpacked root directory.

    Raises OSError when ``apt-get``/``dpkg`` are missing or the download fails (e.g. no network). A relative
    ``cache_dir`` is taken from the current directory (the tools run inside the package's folder).
    """
    root = package_root(package, Path(cache_dir).resolve())
    if (root / UNPACKED_MARKER).is_file():
        return root
    folder = root.parent
    folder.mkdir(parents=True, exist_ok=True)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if not debs:
        _run(["apt-get", "download", package], cwd=folder, what=f"download Debian package {package}")
        debs = sorted(folder.glob(f"{package}_*.deb"))
        if not debs:
            raise OSError(f"apt-get download {package} wrote no .deb file into {folder}")
    if root.exists():
        shutil.rmtree(root)  # an unpack that was interrupted
    _run(["dpkg", "-x", str(debs[-1]), str(root)], cwd=folder, what=f"unpack {debs[-1].name}")
    (root / UNPACKED_MARKER).write_text(debs[-1].name + "\n")
    return root


def _run(command: list[str], cwd: Path, what: str) -> None:
    if shutil.which(command[0]) is None:
        raise OSError(f"cannot {what}: {command[0]} is not installed")
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise OSError(f"cannot {what}: {' '.join(command)} failed ({detail[-1] if detail else result.returncode})")


@dataclass(frozen=True)
class FilesParagraph:
    """One ``Files:`` paragraph of a DEP-5 copyright file."""

    patterns: tuple[str, ...]
    copyright: str
    licence: str


def read_copyright(root: Path, package: str) -> list[FilesParagraph]:
    """The ``Files:`` paragraphs of ``usr/share/doc/<package>/copyright`` (empty when absent)."""
    path = root / "usr" / "share" / "doc" / package / "copyright"
    if not path.is_file():
        return []
    paragraphs = []
    for block in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields: dict[str, list[str]] = {}
        name = None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and name is not None:
                fields[name].append(line.strip())
            elif ":" in line:
                name, value = line.split(":", 1)
                fields[name] = [value.strip()] if value.strip() else []
        if "Files" in fields:
            paragraphs.append(FilesParagraph(
                patterns=tuple(" ".join(fields["Files"]).split()),
                copyright="; ".join(fields.get("Copyright", [])),
                licence=(fields.get("License") or [""])[0],
            ))
    return paragraphs


def licence_of(paragraphs: list[FilesParagraph], source_path: str) -> FilesParagraph | None:
    """The paragraph covering ``source_path`` (a path in the upstream source tree): the last match wins."""
    found = None
    for paragraph in paragraphs:
        if any(fnmatch.fnmatchcase(source_path, pattern) for pattern in paragraph.patterns):
            found = paragraph
    return found
