"""The GPUs readers have, what the full profile needs on each, and the settings that fit.

Readers run the full profile on Colab's T4 (16 GB, fp16 only: no bf16), on an A100 (40 GB) or on an
H100 (80 GB). The full profile's runs use a global batch of 256 sequences of 128 tokens; what fits in one
step differs by a factor of eight between these GPUs. :func:`settings_for` keeps the global batch (so that
the results do not depend on the GPU) and chooses the per-step micro-batch, the gradient accumulation and
the precision for the GPU; :func:`estimates` says how long and how much memory each training chapter needs.

The estimates are arithmetic, not measurements: the analytic FLOPs of every step (:mod:`studentbert.flops`)
over the GPU's datasheet peak times an assumed model FLOPs utilisation (:data:`ASSUMED_MFU`), and memory
from the parameter count (weights, gradients and AdamW's two moments in fp32: 16 bytes a parameter) plus
the activations of one micro-batch (Korthikanti et al., 2022: ``s b h (34 + 5 a s / h)`` bytes a layer in
16-bit precision) plus the logits the losses read. ``benchmarks/gpu_check.py`` measures the real MFU on
the GPU at hand; chapter 10 sets the two side by side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import BertConfig, DistilBertConfig
from .flops import distillation_step_flops, pretraining_step_flops


@dataclass(frozen=True)
class GPU:
    """A GPU model: dense tensor-core peak in TFLOP/s (no sparsity) and memory, from NVIDIA's datasheets."""

    name: str
    peak_tflops: float
    memory_gb: float
    precision: str  # the 16-bit format its tensor cores run: "bf16", or "fp16" (with loss scaling) before Ampere


GPUS: dict[str, GPU] = {
    "T4": GPU("T4", 65.0, 16.0, "fp16"),  # Turing: FP16 tensor cores, no bf16
    "A100": GPU("A100", 312.0, 40.0, "bf16"),  # A100 40 GB (Colab's); BF16 dense
    "H100": GPU("H100", 989.0, 80.0, "bf16"),  # H100 SXM; BF16 dense
}
ASSUMED_MFU = 0.35  # a typical utilisation of BERT-base training in PyTorch; measure it with gpu_check.py
MEMORY_HEADROOM = 0.8  # plan for 80% of the memory: the allocator, CUDA context and fragmentation take the rest


def gpu_named(device_name: str) -> GPU | None:
    """The :data:`GPUS` entry a device name (``torch.cuda.get_device_name()``) refers to, if any."""
    upper = device_name.upper()
    for key in ("H200", "H100", "A100", "T4"):
        if key in upper:
            return GPUS["H100" if key == "H200" else key]
    return None


def training_memory_gb(config: BertConfig | DistilBertConfig, parameters: int, micro_batch: int, length: int,
                       logit_rows_per_sequence: float, frozen_parameters: int = 0) -> float:
    """Estimated peak memory of one training step (GB): states + activations of one micro-batch + logits.

    ``logit_rows_per_sequence``: positions whose vocabulary logits are kept (15% for pretraining, every token
    for distillation, teacher's and student's). ``frozen_parameters``: a teacher that only runs forward (16-bit).
    """
    states = 16 * parameters + 2 * frozen_parameters
    h, a = config.hidden_size, config.num_heads
    activations = config.num_layers * length * micro_batch * h * (34 + 5 * a * length / h)
    logits = micro_batch * logit_rows_per_sequence * config.vocab_size * 12  # 16-bit logits + fp32 log-softmax + grad
    return (states + activations + logits) / 1e9


def settings_for(gpu: GPU, global_batch: int = 256, length: int = 128) -> dict:
    """Precision, micro-batch and accumulation for the full profile's pretraining and distillation on ``gpu``."""
    teacher = BertConfig()
    student = DistilBertConfig.from_teacher(teacher, num_layers=6)
    out = {}
    for stage, config, params, frozen, rows in (("pretrain", teacher, 110_000_000, 0, 0.15 * length),
                                                 ("distill", student, 66_000_000, 110_000_000, 2 * length)):
        micro = global_batch
        while micro > 1 and training_memory_gb(config, params, micro, length, rows, frozen) > MEMORY_HEADROOM * gpu.memory_gb:
            micro //= 2
        out[stage] = {"mixed_precision": gpu.precision, "micro_batch": micro,
                      "gradient_accumulation_steps": global_batch // micro,
                      "memory_gb": round(training_memory_gb(config, params, micro, length, rows, frozen), 1)}
    return out


def estimates(gpu: GPU, steps: int = 20_000, global_batch: int = 256, length: int = 128,
              ablation_runs: int = 5, ablation_steps: int = 20_000) -> dict[str, dict]:
    """Hours and GB of the full profile's training chapters on ``gpu``, at :data:`ASSUMED_MFU`.

    Chapter 4 pretrains (``steps``); chapter 6 distils once (``steps``); chapter 7 reuses chapter 6's student
    and distils ``ablation_runs`` more students (the ablation's other rows and the masked-LM-only baseline).
    """
    teacher = BertConfig()
    student = DistilBertConfig.from_teacher(teacher, num_layers=6)
    rate = gpu.peak_tflops * 1e12 * ASSUMED_MFU
    masked = round(0.15 * length) * global_batch
    pre = pretraining_step_flops(teacher, global_batch, length, masked) * steps / rate
    distil_step = distillation_step_flops(teacher, student, global_batch, length, rows=global_batch * length)["total"]
    dist = distil_step * steps / rate
    fits = settings_for(gpu, global_batch, length)
    return {
        "04_pretraining": {"hours": round(pre / 3600, 2), "memory_gb": fits["pretrain"]["memory_gb"]},
        "06_distilbert": {"hours": round(dist / 3600, 2), "memory_gb": fits["distill"]["memory_gb"]},
        "07_finetuning": {"hours": round(distil_step * ablation_runs * ablation_steps / rate / 3600, 2),
                          "memory_gb": fits["distill"]["memory_gb"]},
    }


def chapter_budgets(device_name: str | None = None) -> dict[str, float]:
    """Seconds for the training chapters on the GPU at hand (``run_book.py``'s budgets), with 50% to spare.

    Raises RuntimeError when there is no GPU, or one that :data:`GPUS` does not know.
    """
    if device_name is None:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("no GPU")
        device_name = torch.cuda.get_device_name(0)
    gpu = gpu_named(device_name)
    if gpu is None:
        raise RuntimeError(f"no estimates for {device_name}")
    return {chapter: 1.5 * 3600 * e["hours"] for chapter, e in estimates(gpu).items()}


def fit_to_gpu(profile, device_name: str | None = None):
    """``profile`` with the precision and gradient accumulation that fit the GPU at hand (global batch unchanged).

    Without a known GPU the profile is returned as it is.
    """
    if device_name is None:
        import torch

        if not torch.cuda.is_available():
            return profile
        device_name = torch.cuda.get_device_name(0)
    gpu = gpu_named(device_name)
    if gpu is None:
        return profile
    fits = settings_for(gpu, global_batch=profile.pretrain.batch_size, length=profile.data.max_length)
    changes = {}
    for stage in ("pretrain", "distill"):
        f = fits[stage]
        changes[stage] = dataclasses.replace(getattr(profile, stage), mixed_precision=f["mixed_precision"],
                                             gradient_accumulation_steps=f["gradient_accumulation_steps"])
    return profile.replace(**changes)
