"""studentbert.hardware: the device line and the advice for the full profile without a GPU."""

import warnings

import pytest
import torch

from studentbert.hardware import check_device, describe


def test_full_profile_without_gpu_warns_with_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="Change runtime type > GPU"):
        line = check_device("full")
    assert line.startswith("cpu: ") and line == describe()


def test_tiny_profile_never_warns(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_device("tiny").startswith("cpu: ")


def test_busy_cores_counts_another_process_busy_loop():
    """A busy loop in another process counts as (about) one busy core, as :func:`busy_cores` counts it."""
    import os
    import subprocess
    import sys
    import time

    from studentbert.speed import busy_cores

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        busy = busy_cores(0.5)
    finally:
        burner.kill()
        burner.wait()
    assert busy >= 0.7  # other work on the machine can only add to the burner's core
    assert busy <= (os.cpu_count() or 1) + 1e-6
