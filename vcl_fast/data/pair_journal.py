"""The journal of a long ``vcl-fast localize --pairs`` run: the pairs finished so far, kept on disk as they
finish, so that an interrupted run (Ctrl-C, a crash, a lost machine) resumes where it stopped.

The file is JSON Lines. The first line is ``{"journal": "vcl_fast localize --pairs", "version": 1, "settings":
{...}}``: what the results depend on (model, method, parameters, fps...). Each later line is one finished pair,
``{"pair": [query_id, reference_id], "boxes": [[q_start, r_start, q_end, r_end, score], ...]}`` in seconds, or
one video that cannot be read, ``{"unreadable": video_id, "reason": "..."}``. Every line is flushed and fsynced
as it is written. A last line cut short (the process died while writing it) is dropped on reopening. The file
is made when the first pair is recorded, so a run that fails before that leaves nothing behind.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np

from vcl_fast.data.formats import Pair

KIND = "vcl_fast localize --pairs"
VERSION = 1


class PairJournal:
    """Append-only record of finished pairs at ``path``; reopening it with the same ``settings`` resumes.

    done: ``{pair: (N, 5) float64 boxes}`` of the pairs already finished; unreadable: ``{video_id: reason}``.
    ValueError when ``path`` holds a journal of other settings, or is not a journal.
    """

    def __init__(self, path: str | os.PathLike, settings: Mapping[str, Any]):
        self.path = Path(path)
        self.settings = json.loads(json.dumps(dict(settings)))  # as it reads back
        self.done: dict[Pair, np.ndarray] = {}
        self.unreadable: dict[str, str] = {}
        self._handle: IO[str] | None = None
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        if lines[-1]:  # cut short while being written: drop it
            with open(self.path, "r+b") as handle:
                handle.truncate(len(data) - len(lines[-1]))
        records = []
        for number, line in enumerate(lines[:-1], start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{self.path}: line {number} is not JSON: not a journal of vcl-fast localize "
                                 "--pairs, or damaged; delete it to start over") from None
        header = records[0] if records else None
        if not (isinstance(header, dict) and header.get("journal") == KIND and header.get("version") == VERSION):
            raise ValueError(f"{self.path}: not a journal of vcl-fast localize --pairs; delete it to start over")
        if header["settings"] != self.settings:
            changed = sorted(key for key in {*header["settings"], *self.settings}
                             if header["settings"].get(key) != self.settings.get(key))
            raise ValueError(f"{self.path}: a partial run with other settings ({', '.join(changed)} differ); run "
                             "with the same settings to resume it, or delete it to start over")
        for record in records[1:]:
            if "unreadable" in record:
                self.unreadable[record["unreadable"]] = record["reason"]
            else:
                query_id, reference_id = record["pair"]
                self.done[(query_id, reference_id)] = np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 5)

    def _write(self, record: dict) -> None:
        if self._handle is None:
            new = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")
            if new:
                self._handle.write(json.dumps({"journal": KIND, "version": VERSION, "settings": self.settings}) + "\n")
        self._handle.write(json.dumps(record) + "\n")

    def record(self, predictions: Mapping[Pair, np.ndarray], unreadable: Mapping[str, str]) -> None:
        """Add finished pairs (boxes in seconds) and the unreadable videos not recorded yet; on disk on return."""
        for (query_id, reference_id), boxes in predictions.items():
            self._write({"pair": [query_id, reference_id], "boxes": np.asarray(boxes, dtype=np.float64).tolist()})
            self.done[(query_id, reference_id)] = boxes
        for video_id, reason in unreadable.items():
            if video_id not in self.unreadable:
                self._write({"unreadable": video_id, "reason": reason})
                self.unreadable[video_id] = reason
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        """Close and delete the journal (the run's outputs are written)."""
        self.close()
        self.path.unlink(missing_ok=True)
