"""What the machine offers, advice when a profile asks for more than it has, and the accelerator a run trains on."""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path

import torch

GPU_ADVICE = (
    "The 'full' profile trains BERT-base-sized models and needs a GPU; on this machine torch sees none, so it "
    "would take days. On Colab choose Runtime > Change runtime type > GPU (then run all cells again); "
    "elsewhere install a CUDA build of PyTorch. For a CPU, use profile = \"tiny\"."
)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """One line: the device that training will use, e.g. ``"cuda: NVIDIA H100 80GB HBM3 (bf16)"``."""
    if torch.cuda.is_available():
        bf16 = " (bf16)" if torch.cuda.is_bf16_supported() else ""
        return f"cuda: {torch.cuda.get_device_name(0)}{bf16}"
    return f"cpu: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def check_device(profile: str) -> str:
    """Return :func:`describe`; warn (with what to do) when ``profile`` is ``"full"`` and there is no GPU."""
    if profile == "full" and not torch.cuda.is_available():
        warnings.warn(GPU_ADVICE, stacklevel=2)
    return describe()


def accelerator(mixed_precision: str, **kwargs):
    """An :class:`accelerate.Accelerator` for one training run: on the GPU if torch sees one, else the CPU.

    accelerate keeps one state per process and refuses a second ``Accelerator`` with another precision
    ("AcceleratorState has already been initialized"), yet runs in one notebook may differ (a bf16 distillation,
    then an fp32 fine-tuning). So a change of precision resets that state first; the processes of a distributed
    run (accelerate's ``PartialState``) are kept.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available(), **kwargs)
