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
