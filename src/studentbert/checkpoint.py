"""Atomic, locked, verified checkpoints: how the training loop writes and reads ``checkpoint.pt``.

* **Atomic**: the state is written to a temporary file unique to this process (``checkpoint.pt.<pid>.tmp``),
  flushed and ``fsync``-ed, renamed over ``checkpoint.pt`` with ``os.replace`` and the directory ``fsync``-ed:
  after a crash or a power cut the file is either the old checkpoint or the new one, never half of one.
  A full disk (``ENOSPC``) raises :class:`NoSpaceError`, removes the partial file and leaves the old
  checkpoint as it was.
* **Locked**: :class:`OutputDirLock` takes an advisory ``fcntl.flock`` on ``output_dir/.lock`` (holding the PID
  and host of the owner) so that two runs cannot write into the same directory; the second one is refused at
  once with :class:`OutputDirLockedError`. ``flock`` locks belong to an open file description, so two
  locks on the same file conflict even inside one process. The lock dies with its process.
* **Verified**: :func:`read_checkpoint` turns a truncated or corrupt file into :class:`CorruptCheckpointError`
  (one line: the file and the way out) instead of a zip or pickle traceback.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import Any

import torch

CHECKPOINT = "checkpoint.pt"
LOCK = ".lock"


class CheckpointError(Exception):
    """A problem with an output directory or its checkpoint that the user can fix (the CLI prints one line)."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """``checkpoint.pt`` cannot be read (truncated, corrupt, or not a checkpoint)."""


class SettingsChangedError(CheckpointError, ValueError):
    """Resuming with settings that differ from those the checkpoint was written with."""


class OutputDirLockedError(CheckpointError, RuntimeError):
    """Another process holds the lock on the output directory."""


class NoSpaceError(CheckpointError, OSError):
    """The disk filled up while a checkpoint was written; the previous checkpoint is intact."""


def state_nbytes(obj: Any) -> int:
    """Bytes of all tensors in a (nested) state: about the size ``torch.save`` writes."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(state_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_nbytes(v) for v in obj)
    return 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically and durably (see the module docstring).

    Raises:
        NoSpaceError: the disk is full; ``path`` still holds the previous checkpoint (if any).
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            mb = state_nbytes(state) / 2**20
            raise NoSpaceError(
                errno.ENOSPC, f"no space left on device: the checkpoint needs about {mb:.1f} MB in "
                f"{path.parent} (the previous checkpoint is intact); free some space and run the same command "
                f"again") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`write_checkpoint` (on the CPU).

    Raises:
        CorruptCheckpointError: the file is truncated, corrupt or not a training checkpoint.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # zipfile, pickle, EOFError, RuntimeError("PytorchStreamReader failed ...")
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise CorruptCheckpointError(
            f"{path} is corrupt or truncated ({type(e).__name__}: {reason}); start over with --restart (it moves "
            f"the file to {path.name}.old) or delete the file") from None
    if not isinstance(state, dict) or not {"step", "model", "optimizer", "config"} <= set(state):
        raise CorruptCheckpointError(
            f"{path} is not a training checkpoint (keys missing); start over with --restart or delete the file")
    return state


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete ``checkpoint.pt.*.tmp`` left by a process that died mid-write; call it with the lock held."""
    removed = []
    for tmp in Path(directory).glob(f"{CHECKPOINT}.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def set_aside(path: str | Path) -> Path | None:
    """Move ``path`` to ``path.old`` (replacing an older ``.old``); returns the new path, or None if absent."""
    path = Path(path)
    if not path.exists():
        return None
    old = path.with_name(path.name + ".old")
    os.replace(path, old)
    return old


class OutputDirLock:
    """An exclusive advisory lock on ``directory/.lock``; use as a context manager or ``acquire``/``release``.

    The lock file holds ``pid=<PID> host=<HOST>`` of its owner, which the refusal names.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._fd: int | None = None

    def acquire(self) -> OutputDirLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "an unknown process"
            os.close(fd)
            raise OutputDirLockedError(
                f"{self.directory} is in use by another run ({owner}): wait for it to finish, stop it, or choose "
                f"another --output-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> OutputDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
