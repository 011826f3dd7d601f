"""A run directory's files: atomic, locked, verified checkpoints, the resume check, ``metrics.jsonl``.

How the training loop writes and reads ``checkpoint.pt``:

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
* **Checked on resume**: :func:`check_resume_settings` compares a checkpoint's config and settings with the
  run's and refuses any change that changes the result, except :data:`SAFE_TO_CHANGE` and explicit overrides
  (:data:`OVERRIDABLE`, :func:`allow_resume_changes`).

The metrics of a run are one JSON record a line in ``metrics.jsonl`` (:func:`read_metrics`, :func:`truncate_metrics`);
its final results go to ``results.json``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import socket
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
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


def rng_state() -> dict[str, Any]:
    """The state of every random number generator a run draws from (torch, CUDA, Python, NumPy)."""
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s generators."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


# ----------------------------------------------------------------------------------------------------------
# the resume check

#: TrainConfig fields that a resumed run may change freely: they do not change the trained weights.
SAFE_TO_CHANGE = frozenset({"eval_every", "save_every", "log_every", "report_to"})
#: Fields that a resume may change only when asked explicitly (``allow_changes`` / ``--override-on-resume``).
OVERRIDABLE = frozenset({"learning_rate", "max_steps"})
RESTART_ADVICE = ("running the same command again repeats the same steps: start over with --restart "
                  "(resume='restart'), or resume with a lower --learning-rate and --override-on-resume learning_rate")
_ALLOWED_CHANGES: ContextVar[frozenset[str]] = ContextVar("allowed_resume_changes", default=frozenset())


@contextlib.contextmanager
def allow_resume_changes(keys: Iterable[str]) -> Iterator[None]:
    """Within the block, a resume may change ``keys`` (a subset of :data:`OVERRIDABLE`).

    For callers that cannot pass ``allow_changes`` through to :meth:`studentbert.training.Trainer.train` (the
    CLI around a stage).
    """
    token = _ALLOWED_CHANGES.set(frozenset(keys))
    try:
        yield
    finally:
        _ALLOWED_CHANGES.reset(token)


def allowed_resume_changes(allow_changes: Iterable[str] | None) -> frozenset[str]:
    """``allow_changes``, or those of an enclosing :func:`allow_resume_changes`; checked against OVERRIDABLE."""
    allow = frozenset(allow_changes) if allow_changes is not None else _ALLOWED_CHANGES.get()
    if allow - OVERRIDABLE:
        raise ValueError(f"Only {sorted(OVERRIDABLE)} can be overridden on resume, not {sorted(allow - OVERRIDABLE)}.")
    return allow


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_resume_settings(state: dict[str, Any], config: dict[str, Any], defaults: dict[str, Any],
                          settings: dict[str, Any] | None, allow: frozenset[str], where: Path) -> dict[str, list]:
    """Compare a checkpoint's ``config`` and ``settings`` with this run's; return the allowed changes.

    ``defaults``: the config's default values (older checkpoints lack newer fields).

    Raises:
        SettingsChangedError: one message naming every refused key, ``old -> new``.
    """
    old = {**defaults, **state["config"]}
    diffs = {k: (old.get(k), v) for k, v in config.items() if k not in SAFE_TO_CHANGE and old.get(k) != v}
    if settings is not None and state.get("settings") is not None:
        a, b = _flatten(state["settings"]), _flatten(settings)
        diffs.update({f"settings.{k}": (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys())
                      if a.get(k) != b.get(k)})
    allowed = {k: list(v) for k, v in diffs.items() if k in allow}
    refused = {k: v for k, v in diffs.items() if k not in allow}
    if "max_steps" in allowed and config["max_steps"] <= state["step"]:
        raise SettingsChangedError(f"max_steps={config['max_steps']} is not beyond the step of the checkpoint "
                                   f"in {where} ({state['step']}): extend max_steps or --restart.")
    if refused:
        listing = "; ".join(f"{k}: {o!r} -> {n!r}" for k, (o, n) in refused.items())
        hint = (f"; to change {', '.join(sorted(refused.keys() & OVERRIDABLE))} on purpose pass --override-on-"
                f"resume {' '.join(sorted(refused.keys() & OVERRIDABLE))}") if refused.keys() & OVERRIDABLE else ""
        raise SettingsChangedError(
            f"The checkpoint in {where} was written with other settings: {listing}. Resume with the "
            f"same settings, start over with --restart, or use another --output-dir{hint}.")
    return allowed


# ----------------------------------------------------------------------------------------------------------
# metrics.jsonl


def truncate_metrics(path: str | Path, step: int) -> None:
    """Keep the records of ``path`` up to ``step`` (the checkpoint's): a resume repeats the steps after it."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line cut short by a crash is dropped too
            if json.loads(line).get("step", 0) <= step:
                kept.append(line + "\n")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)


def read_metrics(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``metrics.jsonl`` as ``{split: [records sorted by step]}`` (``train``, ``eval``, and any other split),
    keeping the last record of a step (a resumed run re-logs the steps after its last checkpoint)."""
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for line in Path(path).read_text().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            last[record.get("split", "train"), record.get("step", 0)] = record
    splits = {"train": [], "eval": [], **{split: [] for split, _ in last}}
    for key in sorted(last):
        splits[key[0]].append(last[key])
    return splits
