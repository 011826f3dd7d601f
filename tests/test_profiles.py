"""The profiles: the full profile at smoke scale keeps every shape, overrides replace settings by name, and
the GPU settings keep the global batch while fitting the GPU's memory and precision."""

from __future__ import annotations

import pytest

import studentbert as sb
from studentbert.gpus import GPUS, MEMORY_HEADROOM, estimates, fit_to_gpu, gpu_named, settings_for


def test_smoke_keeps_the_full_shapes_and_cuts_the_work():
    full, smoke = sb.get_profile("full"), sb.get_profile("full", smoke=True)
    assert smoke.teacher == full.teacher and smoke.student_layers == full.student_layers == 6
    assert smoke.data.max_length == full.data.max_length == 128 and smoke.data.tokenizer == "bert-base-uncased"
    assert smoke.teacher.vocab_size == 30522 and smoke.teacher.num_layers == 12 and smoke.teacher.hidden_size == 768
    assert smoke.smoke and not full.smoke
    assert smoke.distill.max_steps < 10 and smoke.pretrain.max_steps < 10 and smoke.finetune.max_steps < 10
    with pytest.raises(ValueError, match="already small"):
        sb.get_profile("tiny", smoke=True)


def test_overrides_replace_settings_by_dotted_name_and_refuse_typos():
    p = sb.get_profile("full", overrides={"teacher_checkpoint": "/data/bert", "data.corpus": "/data/wiki",
                                          "distill.max_steps": 7})
    assert (p.teacher_checkpoint, p.data.corpus, p.distill.max_steps) == ("/data/bert", "/data/wiki", 7)
    assert p.pretrain.max_steps == sb.get_profile("full").pretrain.max_steps
    with pytest.raises(ValueError, match="'data.corpsu'"):
        sb.get_profile("full", overrides={"data.corpsu": "x"})
    with pytest.raises(ValueError, match="'teacher_chekpoint'"):
        sb.get_profile("full", overrides={"teacher_chekpoint": "x"})


@pytest.mark.parametrize("name", sorted(GPUS))
def test_gpu_settings_keep_the_global_batch_and_fit_in_memory(name):
    gpu = GPUS[name]
    for stage in settings_for(gpu).values():
        assert stage["micro_batch"] * stage["gradient_accumulation_steps"] == 256
        assert stage["memory_gb"] <= MEMORY_HEADROOM * gpu.memory_gb
        assert stage["mixed_precision"] == ("fp16" if name == "T4" else "bf16")


def test_fit_to_gpu_and_estimates():
    full = sb.get_profile("full")
    t4 = fit_to_gpu(full, "Tesla T4")
    assert t4.distill.mixed_precision == "fp16" and t4.distill.gradient_accumulation_steps > 1
    assert t4.distill.batch_size == full.distill.batch_size
    assert fit_to_gpu(full, "Some Other Accelerator") == full
    assert gpu_named("NVIDIA H200") == GPUS["H100"] and gpu_named("NVIDIA A100-SXM4-40GB") == GPUS["A100"]
    h100, a100 = estimates(GPUS["H100"]), estimates(GPUS["A100"])
    ratio = h100["06_distilbert"]["hours"] / a100["06_distilbert"]["hours"]
    assert ratio == pytest.approx(GPUS["A100"].peak_tflops / GPUS["H100"].peak_tflops, rel=0.02)
