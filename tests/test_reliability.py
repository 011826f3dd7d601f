"""Faults of a training run and what the loop promises for each (the table is ``tests/FAULTS.md``).

Every test injects its fault through the public API (a loss function that misbehaves at step k, a signal,
a damaged file, a held lock, a full tmpfs) into a tiny BERT trained by :class:`studentbert.training.Trainer`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import RandomMaskCollate

import studentbert as sb
from studentbert.checkpoint import (
    CorruptCheckpointError,
    NoSpaceError,
    OutputDirLock,
    OutputDirLockedError,
    SettingsChangedError,
)
from studentbert.training import TrainConfig, Trainer

SETTINGS = {"teacher": "runs/teacher/model", "loss": {"temperature": 2.0, "alpha_ce": 5.0}}


class Loss:
    """Masked-LM loss that misbehaves at step ``at`` (1-based) with ``fault``:
    ``nan_loss`` (the loss is NaN), ``nan_grad`` (the loss is finite, its gradient NaN), ``sigterm`` / ``sigint``
    (the process signals itself), ``crash`` (an exception: a killed process, without any chance to save)."""

    def __init__(self, fault: str | None = None, at: int = 0) -> None:
        self.fault, self.at, self.calls = fault, at, 0

    def __call__(self, model, batch):
        self.calls += 1
        logits = model(batch["input_ids"], batch["attention_mask"]).mlm_logits
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
        if self.calls == self.at:
            if self.fault == "nan_loss":
                loss = loss * float("nan")
            elif self.fault == "nan_grad":  # sqrt'(0) = inf: 0 * inf = NaN in every gradient, the value stays finite
                loss = loss + 0.0 * torch.sqrt(loss * 0.0)
            elif self.fault in ("sigterm", "sigint"):
                os.kill(os.getpid(), signal.SIGTERM if self.fault == "sigterm" else signal.SIGINT)
            elif self.fault == "crash":
                raise RuntimeError("simulated crash")
        return loss, {}


def make(out: Path, loss: Loss | None = None, steps: int = 8, settings: dict | None = None, **config) -> Trainer:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    starts = torch.randint(0, 48, (40,), generator=g).tolist()
    sizes = torch.randint(5, 16, (40,), generator=g).tolist()
    data = [{"input_ids": [2 + s] * n} for s, n in zip(starts, sizes, strict=True)]
    model = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                                                intermediate_size=32, max_position_embeddings=16))
    cfg = TrainConfig(**{"max_steps": steps, "batch_size": 8, "learning_rate": 1e-3, "eval_every": 0,
                         "save_every": 2, "log_every": 1, **config})
    return Trainer(model, loss or Loss(), data, RandomMaskCollate(), cfg, out, description="test",
                   settings=settings)


def checkpoint(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", weights_only=False)


def train_steps(out: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "train"]


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state["model"].values() if t.is_floating_point())


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The final weights of an uninterrupted 8-step run."""
    trainer = make(tmp_path_factory.mktemp("straight"))
    trainer.train()
    return trainer.raw_model.state_dict()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------------------------------------ NaN / inf


@pytest.mark.parametrize("fault", ["nan_loss", "nan_grad"])
def test_non_finite_loss_or_gradient_stops_and_keeps_the_last_checkpoint(tmp_path: Path, fault: str):
    with pytest.raises(FloatingPointError) as info:
        make(tmp_path, Loss(fault, at=5)).train()
    message = str(info.value)
    assert "at step 5" in message and "last checkpoint (step 4)" in message
    assert "--restart" in message and "--override-on-resume learning_rate" in message
    assert "Lower the learning rate" not in message  # a resume alone would repeat the same steps
    state = checkpoint(tmp_path)
    assert state["step"] == 4 and all_finite(state)
    assert train_steps(tmp_path) == [1, 2, 3, 4]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path: Path):
    trainer = make(tmp_path)
    with torch.no_grad():
        next(trainer.raw_model.parameters())[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match="is not finite after step 0: no checkpoint was written"):
        trainer.save_checkpoint()
    assert not (tmp_path / "checkpoint.pt").exists()


# ------------------------------------------------------------------------------------------------ resume checks


def test_resume_refuses_every_changed_setting_in_one_message(tmp_path: Path):
    make(tmp_path, settings=SETTINGS).train(stop_after=2)
    changed = {**SETTINGS, "loss": {"temperature": 3.0, "alpha_ce": 5.0}, "student_layers": 3}
    with pytest.raises(SettingsChangedError) as info:
        make(tmp_path, settings=changed, learning_rate=2e-3, seed=1).train()
    message = str(info.value)
    assert "\n" not in message
    for change in ("learning_rate: 0.001 -> 0.002", "seed: 0 -> 1", "settings.loss.temperature: 2.0 -> 3.0",
                   "settings.student_layers: None -> 3", "--override-on-resume learning_rate"):
        assert change in message, change
    assert checkpoint(tmp_path)["settings"] == SETTINGS  # untouched
    # the safe keys may change; the run then finishes
    trainer = make(tmp_path, settings=SETTINGS, save_every=3, log_every=2, eval_every=5)
    trainer.train()
    assert trainer.step == 8 and checkpoint(tmp_path)["history"] == []


def test_explicit_overrides_change_learning_rate_and_max_steps_and_are_recorded(tmp_path: Path):
    make(tmp_path, settings=SETTINGS).train(stop_after=3)
    with pytest.raises(SettingsChangedError, match=r"max_steps=3 is not beyond the step of the checkpoint .* \(3\)"):
        make(tmp_path, steps=3, settings=SETTINGS).train(allow_changes={"max_steps"})
    with pytest.raises(ValueError, match="Only .* can be overridden"):
        make(tmp_path, settings=SETTINGS).train(allow_changes={"seed"})
    trainer = make(tmp_path, steps=10, learning_rate=2e-3, settings=SETTINGS)
    trainer.train(allow_changes={"learning_rate", "max_steps"})
    assert trainer.step == 10
    history = checkpoint(tmp_path)["history"]
    assert len(history) == 1 and history[0]["step"] == 3
    assert history[0]["changes"] == {"learning_rate": [1e-3, 2e-3], "max_steps": [8, 10]}
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["changes"] for r in rows if r["split"] == "override"] == [history[0]["changes"]]
    lr = {r["step"]: r["lr"] for r in rows if r["split"] == "train"}
    warmup = int(0.06 * 10)
    assert lr[4] == pytest.approx(2e-3 * (10 - 4) / (10 - warmup))  # the new peak and the new length, at once
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 11))


# ------------------------------------------------------------------------------------------------ damaged files


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_gives_one_line_and_restart_starts_over(tmp_path: Path, damage: str):
    make(tmp_path).train(stop_after=2)
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint" * 50, "empty": b""}[damage]
    path.write_bytes(damaged)
    with pytest.raises(CorruptCheckpointError) as info:
        make(tmp_path).train()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "--restart" in message and "delete" in message
    trainer = make(tmp_path)
    trainer.train(resume="restart")
    assert trainer.step == 8 and (tmp_path / "checkpoint.pt.old").read_bytes() == damaged  # set aside, not lost
    assert checkpoint(tmp_path)["step"] == 8 and train_steps(tmp_path) == list(range(1, 9))


def test_stale_temporary_files_are_removed(tmp_path: Path):
    tmp_path.mkdir(exist_ok=True)
    stale = tmp_path / "checkpoint.pt.99999.tmp"
    stale.write_bytes(b"half a checkpoint")
    make(tmp_path, steps=2).train()
    assert not stale.exists() and checkpoint(tmp_path)["step"] == 2


def test_full_disk_simulated_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    make(tmp_path).train(stop_after=2)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(NoSpaceError, match=r"no space left on device: the checkpoint needs about [\d.]+ MB in"):
        make(tmp_path).train()
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before and not list(tmp_path.glob("*.tmp"))


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 1 MiB tmpfs mounted at tmp_path/fs (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8): the simulated full disk test covers the logic")
    mnt = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed here ({proc.stderr.strip()}): the simulated full disk test covers it")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_tmpfs_keeps_the_previous_checkpoint(small_tmpfs: Path):
    out = small_tmpfs / "run"
    make(out).train(stop_after=2)
    before = (out / "checkpoint.pt").read_bytes()
    free = shutil.disk_usage(small_tmpfs).free
    assert free > len(before) + 64 * 1024, "the tmpfs must hold a second checkpoint for this test to mean anything"
    (small_tmpfs / "filler").write_bytes(b"\0" * (free - 48 * 1024))  # 48 KiB left: metrics fit, a checkpoint not
    with pytest.raises(NoSpaceError) as info:
        make(out).train()
    assert f"in {out}" in str(info.value) and info.value.errno == errno.ENOSPC
    assert (out / "checkpoint.pt").read_bytes() == before and not list(out.glob("*.tmp"))
    (small_tmpfs / "filler").unlink()
    trainer = make(out)  # with space again, the run resumes from step 2 and finishes
    trainer.train()
    assert trainer.step == 8


# ------------------------------------------------------------------------------------------------ lock, signals


def test_a_locked_output_directory_is_refused(tmp_path: Path):
    with OutputDirLock(tmp_path):
        with pytest.raises(OutputDirLockedError, match=f"in use by another run \\(pid={os.getpid()} host="):
            make(tmp_path, steps=2).train()
        assert not (tmp_path / "checkpoint.pt").exists()
    make(tmp_path, steps=2).train()  # released: the run goes ahead, and releases the lock in turn
    with OutputDirLock(tmp_path):
        pass


@pytest.fixture
def guarded_signals():
    """Should the Trainer not catch the signal, fail the test instead of killing pytest."""
    def fail(signum, frame):
        raise AssertionError(f"{signal.Signals(signum).name} reached the test: the Trainer did not handle it")

    old = {s: signal.signal(s, fail) for s in (signal.SIGTERM, signal.SIGINT)}
    yield fail
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("fault, exception", [("sigterm", SystemExit), ("sigint", KeyboardInterrupt)])
def test_signal_saves_the_step_and_a_rerun_is_bit_identical(tmp_path: Path, straight, guarded_signals, fault,
                                                            exception):
    with pytest.raises(exception):
        make(tmp_path, Loss(fault, at=5)).train()
    assert signal.getsignal(signal.SIGTERM) is guarded_signals  # the old handlers are back
    assert checkpoint(tmp_path)["step"] == 5  # not the last periodic save (step 4): the step in progress
    resumed = make(tmp_path)
    resumed.train()
    assert_same_weights(resumed.raw_model.state_dict(), straight)
    assert train_steps(tmp_path) == list(range(1, 9))


def test_metrics_have_no_duplicates_after_a_crash_and_resume(tmp_path: Path, straight):
    with pytest.raises(RuntimeError, match="simulated crash"):
        make(tmp_path, Loss("crash", at=6), save_every=3).train()
    assert checkpoint(tmp_path)["step"] == 3 and train_steps(tmp_path) == [1, 2, 3, 4, 5]
    resumed = make(tmp_path, save_every=3)
    resumed.train()
    assert train_steps(tmp_path) == list(range(1, 9))
    assert_same_weights(resumed.raw_model.state_dict(), straight)
