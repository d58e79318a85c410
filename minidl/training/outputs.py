"""The files of a run: checkpoints, the final outputs and the output directory itself.

``RunOutputs`` is the file half of ``minidl.training.Trainer`` (a mixin: it uses the
trainer's model, optimizer, epoch, step and ``output_dir``). Every write is atomic, and
the directory's ``manifest.json`` names the set that belongs together
(``minidl.manifest``). A run owns its directory: a new run refuses one that holds
another run's checkpoint unless told to overwrite it, and clears what a killed run left.
The one exception is a directory named ``latest`` (``minidl train``'s default,
``runs/latest``): it always holds the newest run, so the run before moves aside to the
sibling ``previous`` (replacing the one there), and nothing is lost by running twice.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from minidl import storage
from minidl.errors import OutputDirError, OutputWriteError
from minidl.manifest import (CHECKPOINT_NAME, MANIFEST_NAME, DirectoryRun, claim_directory,
                             clean_directory, commit_checkpoint, directory_run,
                             manifest_checkpoint, new_run_id, remove_run, resolve_resume,
                             run_directory, same_path, write_manifest)
from minidl.training import checkpoint
from minidl.training.checkpoint import history_columns


#: A directory with this name holds the newest run; the one before moves to PREVIOUS.
LATEST, PREVIOUS = "latest", "previous"


class RunOutputs:
    """Checkpoints, final outputs and the output directory of a ``Trainer`` run."""

    #: Where the run that was in ``output_dir`` (``.../latest``) was moved, if it was.
    moved_aside: Path | None = None

    #: How an unusable output directory is named in the error, and what to do instead.
    output_dir_setting = ("output_dir", "choose another, or output_dir=None to write nothing")
    #: The two ways out when ``output_dir`` holds another run: replace it, or continue it.
    occupied_exits = ("pass overwrite=True", "trainer.fit(resume={directory!r})")
    output_dir: Path | None
    epoch: int
    step: int
    history: list[dict[str, float]]
    overwrite: bool
    run_id: str | None
    _resumed_from: Path | None
    checkpoint_epoch: int | None
    resume_notes: list[str]
    removed_leftovers: list[str]

    def _open_output_dir(self) -> None:
        """Before this run writes anything: refuse an ``output_dir`` holding another run's
        checkpoint (or, with ``overwrite``, delete that run's files), claim the directory
        with this run's id, and remove what a killed run left there."""
        directory = self.output_dir
        if directory is None:
            self.run_id = self.run_id or new_run_id()
            return
        found = directory_run(directory)
        ours = self.run_id is not None and found.run_id == self.run_id
        # A resume into the checkpoint's own folder continues that folder's run (a mismatch
        # with its manifest was reported by resolve_resume's notes).
        resumed_here = self._resumed_from is not None and same_path(
            run_directory(self._resumed_from), directory)
        if not ours and not resumed_here and found.holds_checkpoint and not self.overwrite:
            if directory.name != LATEST:
                raise OutputDirError(self._occupied_message(directory, found))
            self._write(directory, lambda: self._move_aside(directory))
            found = directory_run(directory)
        run_id = self.run_id = self.run_id or new_run_id()
        if not ours and not resumed_here:
            replace = remove_run if found.holds_checkpoint else claim_directory
            self._write(directory / MANIFEST_NAME,
                        lambda: replace(directory, run_id, self.epoch, self.step))
        self.removed_leftovers = clean_directory(directory, keep=self._resumed_from)

    def _move_aside(self, directory: Path) -> None:
        """``runs/latest`` holds another run: it becomes ``runs/previous`` (replacing the
        one there) and this run starts in an empty ``runs/latest``."""
        previous = directory.with_name(PREVIOUS)
        if previous.is_dir() and not previous.is_symlink():
            shutil.rmtree(previous)
        elif previous.exists() or previous.is_symlink():
            previous.unlink()
        os.replace(directory, previous)
        storage.ensure_writable_dir(directory)
        self.moved_aside = previous

    def _occupied_message(self, directory: Path, found: DirectoryRun) -> str:
        replace, resume = (hint.format(directory=str(directory)) for hint in self.occupied_exits)
        run = f"run {found.run_id}" if found.run_id else "a run without an id"
        epoch = f", epoch {found.epoch}" if found.epoch is not None else ""
        return (f"{directory} holds another run's checkpoint ({run}{epoch}); this run would "
                f"replace it. To replace it, {replace}; to continue it instead, {resume}")

    def checkpoint_meta(self) -> dict[str, Any]:
        """Extra metadata for checkpoints (a config-built trainer adds its config)."""
        return {}

    def save_checkpoint(self, path: str | Path) -> None:
        """Weights, optimizer and scheduler state, epoch, history and RNG states, written
        atomically to ``path`` (``fit`` checkpoints ``output_dir`` by itself)."""
        path = Path(path)
        self._write(path, lambda: checkpoint.save(self, path, self.checkpoint_meta()))

    def checkpoint_run(self) -> None:
        """Checkpoint into ``output_dir`` so that a kill at any moment leaves its manifest
        naming a whole checkpoint (``minidl.manifest``)."""
        directory = self.output_dir
        if directory is None:
            return
        self._write(directory / CHECKPOINT_NAME, lambda: commit_checkpoint(
            directory, lambda path: checkpoint.save(self, path, self.checkpoint_meta()),
            self.epoch, self.step, self.run_id))
        self.checkpoint_epoch = self.epoch

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore ``save_checkpoint``'s state into this trainer (built the same way).

        ``path`` is a checkpoint or a run directory (its manifest's checkpoint).
        """
        path, self.resume_notes = resolve_resume(path)
        arrays, meta = checkpoint.read(path)
        self.restore_checkpoint(path, arrays, meta)

    def restore_checkpoint(self, path: Path, arrays: dict[str, np.ndarray],
                           meta: checkpoint.CheckpointMeta) -> None:
        """``load_checkpoint`` once the file is read: its state, its run id and progress."""
        checkpoint.restore(self, arrays, meta, path)
        self.run_id, self._resumed_from = meta.run_id, path
        named = manifest_checkpoint(self.output_dir) if self.output_dir is not None else None
        if named is not None and _same_content(named, path):
            self.checkpoint_epoch = self.epoch  # the directory's set already holds it

    def write_outputs(self, final: dict[str, Any]) -> None:
        """The run's final files, each written atomically and stamped with its epoch and
        step, then the manifest naming them with the checkpoint of the same epoch."""
        directory = self.output_dir
        if directory is None:
            return
        # e.g. a plugin stopped the run early, or the manifest names no checkpoint of ours
        if self.checkpoint_epoch != self.epoch or manifest_checkpoint(directory) is None:
            self.checkpoint_run()
        stamp = {"epoch": self.epoch, "step": self.step}
        names = self.write_final_files(directory, final, stamp)
        named = resolve_resume(directory)[0].relative_to(directory).as_posix()
        self._write(directory / MANIFEST_NAME, lambda: write_manifest(
            directory, [named, *names], self.epoch, self.step, self.run_id))

    def write_final_files(self, directory: Path, final: dict[str, Any],
                          stamp: dict[str, int]) -> list[str]:
        """Write the final outputs (here ``metrics.json``); returns their names."""
        self._write(directory / "metrics.json", lambda: storage.atomic_write_json(
            directory / "metrics.json",
            {**stamp, "final": final, "history": history_columns(self.history)}))
        return ["metrics.json"]

    def _write(self, target: Path, write: Callable[[], Any]) -> None:
        """Run one atomic write; an ``OSError`` becomes one ``OutputWriteError`` message."""
        try:
            write()
        except OSError as err:
            kept = (f"the checkpoint of epoch {self.checkpoint_epoch} is still loadable: "
                    f"minidl train --resume {self.output_dir}"
                    if self.checkpoint_epoch is not None and self.output_dir is not None
                    else "no checkpoint was written by this run")
            raise OutputWriteError(f"cannot write {target.name} in {target.parent} at epoch "
                                   f"{self.epoch} ({err.strerror or err}); {kept}") from None


def _same_content(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or a.read_bytes() == b.read_bytes()
    except OSError:
        return False

