"""The benchmarks compute what they claim: the plain loop's loss, the FLOP formulas, MFU, the JSON the chapter reads.

No timing is asserted (timings depend on the machine); the scripts run with tiny settings to check their code paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import benchmark

import studentbert as sb
from studentbert.distill import DistillationStep
from studentbert.encoder import attention_mask_for_sdpa
from studentbert.optim import fused_adamw_available, make_adamw
from studentbert.student_init import make_student

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def small_teacher(initializer_range: float = 0.02) -> sb.BertForPreTraining:
    torch.manual_seed(0)
    return sb.BertForPreTraining(sb.BertConfig(vocab_size=97, hidden_size=32, num_layers=4, num_heads=4,
                                               intermediate_size=64, max_position_embeddings=32,
                                               initializer_range=initializer_range))


def padded_mlm_batch(vocab: int, batch: int = 4, length: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([length, length - 3, length // 2, 5])[:batch]
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids = torch.randint(5, vocab, (batch, length), generator=g) * mask
    chosen = (torch.rand(batch, length, generator=g) < 0.3) & mask.bool()
    chosen[:, 1] = True  # at least one label per row
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# --------------------------------------------------------------------------------------------- fast paths


def test_mask_is_dropped_only_for_a_cpu_batch_without_padding():
    assert attention_mask_for_sdpa(None) is None
    assert attention_mask_for_sdpa(torch.ones(2, 5, dtype=torch.long)) is None
    mask = torch.ones(2, 5, dtype=torch.long)
    mask[1, 3:] = 0
    m = attention_mask_for_sdpa(mask)
    assert m.dtype == torch.bool and m.shape == (2, 1, 1, 5) and not m[1, 0, 0, 3:].any()


def test_adamw_is_fused_where_torch_has_the_kernel():
    p = torch.nn.Parameter(torch.zeros(3))
    assert bool(make_adamw([p], 1e-3, "cpu").defaults.get("fused")) == fused_adamw_available("cpu")


# --------------------------------------------------------------------------------------------- plain vs ours


def test_plain_loss_without_padding_is_our_distillation_loss():
    bd = benchmark("bench_distill")
    # a teacher with larger weights: confident, so the soft term is far from 0 and padding rows matter
    teacher = small_teacher(initializer_range=0.3)
    student = make_student(teacher, 2, init="random", seed=1).eval()
    batch = padded_mlm_batch(teacher.config.vocab_size)
    with torch.no_grad():
        ours, ours_terms = DistillationStep(teacher, sb.DistillationLoss())(student, batch)
        t = teacher(batch["input_ids"], batch["attention_mask"])
        s = student(batch["input_ids"], batch["attention_mask"])
        w = sb.DistillationLossWeights()
        real, real_terms = bd.plain_loss(s, t, batch, w, soft_on="real")
        every, every_terms = bd.plain_loss(s, t, batch, w, soft_on="all")
    assert ours_terms["loss_soft"] > 0.1
    assert real.item() == pytest.approx(ours.item(), rel=1e-5)
    for key in ("loss_soft", "loss_hard", "loss_cos"):
        assert real_terms[key] == pytest.approx(ours_terms[key], rel=1e-5, abs=1e-6), key
    # with padding in the soft loss it is another objective (the hard and cosine terms do not change)
    assert every_terms["loss_soft"] != pytest.approx(ours_terms["loss_soft"], rel=1e-3)
    assert every_terms["loss_hard"] == pytest.approx(ours_terms["loss_hard"], rel=1e-5)


def test_rounds_draw_disjoint_examples():
    bd = benchmark("bench_distill")
    rounds = bd.rounds_of_examples(100, 30, 3)
    flat = [i for r in rounds for i in r]
    assert [len(r) for r in rounds] == [30, 30, 30] and len(set(flat)) == 90
    with pytest.raises(ValueError, match="lower --batch"):
        bd.rounds_of_examples(10, 30, 1)


def test_bench_distill_runs_and_checks_equivalence(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    bd = benchmark("bench_distill")
    out = tmp_path / "distill.json"
    r = bd.main(["--device", "cpu", "--batch", "4", "--steps", "2", "--reps", "2", "--warmup", "0",
                 "--json", str(out)])
    assert r["equivalence"]["agree"] and json.loads(out.read_text())["command"].startswith("python benchmarks/")
    # same examples in both loops: the same real tokens per round; the grouped batches carry less padding
    assert r["ours"]["real_tokens_per_round"] == r["plain"]["real_tokens_per_round"]
    assert r["ours"]["padded_tokens_per_round"][0] <= r["plain"]["padded_tokens_per_round"][0]


# --------------------------------------------------------------------------------------------- FLOPs and MFU


def test_forward_flops_by_hand():
    fl = benchmark("flops")
    c = sb.BertConfig(vocab_size=10, hidden_size=4, num_layers=1, num_heads=1, intermediate_size=8,
                      max_position_embeddings=8)
    # one sequence of 2 tokens. Per token, the layer: 2 (3*16 + 16 + 32 + 32) = 256 for its matrices, plus
    # attention 2 * (2 L H) = 32 -> 288, twice = 576. MLM head at 2 rows: 2 * 2 * (16 + 40) = 224.
    # Pooler + NSP, once: 2 * (16 + 8) = 48.
    assert fl.forward_flops(c, batch=1, length=2) == 576 + 224 + 48
    assert fl.pretraining_step_flops(c, 1, 2, masked=1) == 3 * (576 + 112 + 48)


def test_flop_formulas_match_torch_flop_counter():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from studentbert.pretrain import pretraining_loss

    fl = benchmark("flops")
    teacher = small_teacher()
    c = teacher.config
    batch = padded_mlm_batch(c.vocab_size)
    B, L = batch["input_ids"].shape
    masked = int((batch["labels"] != -100).sum())
    full = dict(batch, token_type_ids=torch.zeros_like(batch["input_ids"]),
                next_sentence_label=torch.zeros(B, dtype=torch.long))

    def count(fn) -> int:
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # attention as counted products
            fn()
        return counter.get_total_flops()

    with torch.no_grad():
        assert count(lambda: teacher(batch["input_ids"], batch["attention_mask"])) == fl.forward_flops(c, B, L)
    assert count(lambda: pretraining_loss(teacher, full)[0].backward()) == fl.pretraining_step_flops(c, B, L, masked)
    student = make_student(teacher, 2)
    step = DistillationStep(teacher, sb.DistillationLoss())
    rows = int(batch["attention_mask"].sum())
    expected = fl.distillation_step_flops(c, student.config, B, L, rows)
    assert count(lambda: step(student, batch)[0].backward()) == expected["total"]
    assert expected["teacher_forward"] == fl.forward_flops(c, B, L, logit_rows=rows)


def test_mfu_smoke_on_cpu(tmp_path):
    mfu = benchmark("bench_mfu")
    out = tmp_path / "mfu.json"
    r = mfu.main(["--device", "cpu", "--size", "tiny", "--batch", "2", "--length", "16", "--steps", "1",
                  "--reps", "2", "--warmup", "0", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["peak_matmul"]["flops_per_s"] > 0 and set(saved["results"]) == {"pretraining", "distillation"}
    for row in r["results"].values():
        assert row["flop_counter_ratio"] == pytest.approx(1.0)
        expected = row["flops_per_step"]["total"] / (row["step_ms_median"] / 1e3) / r["peak_matmul"]["flops_per_s"]
        assert row["mfu_median"] == pytest.approx(expected, rel=1e-6)
        assert row["passed"] == (row["mfu_median"] >= 0.40)


def test_mfu_without_a_gpu_writes_nothing(monkeypatch, tmp_path):
    mfu = benchmark("bench_mfu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(mfu, "RESULTS", tmp_path)
    assert mfu.main([]) is None and not list(tmp_path.iterdir())


def test_bench_inference_smoke(tmp_path):
    bi = benchmark("bench_inference")
    r = bi.main(["--device", "cpu", "--sizes", "tiny", "--length", "16", "--batch-sizes", "1", "2", "--reps", "3",
                 "--case-seconds", "0.01", "--json", str(tmp_path / "inference.json")])
    enc = [x for x in r["results"] if x["variant"] == "encoder"]
    assert [x["batch"] for x in enc] == [1, 2] and all(x["reps"] == 3 for x in r["results"])
    assert 2.0 <= enc[0]["flop_ratio"] < 2.01  # half the layers: half the encoder's FLOPs (+ the teacher's pooler)
    mlm = [x for x in r["results"] if x["variant"] == "mlm"]
    assert mlm and all(x["flop_ratio"] < enc[0]["flop_ratio"] for x in mlm)  # the vocabulary head dilutes it


# --------------------------------------------------------------------------------------------- the chapter's JSON

REQUIRED = {  # file: required (False: optional, checked when present)
    "models_cpu.json": True, "models_cpu_base.json": False, "inference_cpu.json": True,
    "distill_cpu_tiny.json": True, "inference_cuda.json": False, "distill_cuda_full.json": False,
    "mfu_cuda_full.json": False, "distill300_cuda_full.json": False,
}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_results_the_chapter_reads(name):
    path = RESULTS / name
    if not path.is_file():
        assert not REQUIRED[name], f"{path} is missing: the performance chapter reads it (see benchmarks/*.py)"
        pytest.skip(f"{name} not measured (needs a GPU or a longer run)")
    r = json.loads(path.read_text())
    hw = r["hardware"]
    assert {"cpu", "threads", "torch", "gpu"} <= set(hw)
    assert r["command"].startswith(("python benchmarks/bench_", "python benchmarks/gpu_check.py"))
    assert {"target", "direction"} <= set(r["goal"]) and isinstance(r["passed"], bool)
    assert not r.get("smoke") and not r.get("gpu_check", {}).get("smoke"), "smoke results are not measurements"
    if name.startswith("models"):
        assert all(row["passed"] == (row["ratio"] <= r["goal"]["target"]) for row in r["results"])
        assert r["passed"] == all(row["passed"] for row in r["results"])
    elif name.startswith("inference"):
        enc = [row for row in r["results"] if row["variant"] == "encoder"]
        assert enc and r["passed"] == all(row["speedup"] >= r["goal"]["target"] for row in enc)
        assert {"parameters", "forward_flops_per_sequence"} <= set(next(iter(r["sizes"].values())))
    elif name.startswith("distill300"):  # gpu_check.py's 300-step distillation at full shape
        assert hw["gpu"] and r["teacher_is_random"] and r["steps"] == 300 and r["all_losses_finite"]
        assert len(r["loss_curve"]) == r["steps"] // r["train_config"]["log_every"]
        assert r["passed"] == (r["loss_ratio"] < r["goal"]["target"]) and r["tokens_per_s_median"] > 0
    elif name.startswith("distill"):
        assert r["equivalence"]["agree"]
        assert r["passed"] == (r["speedup"] > r["goal"]["target"])
        assert r["ours"]["tokens_per_s_median"] > 0 and r["plain"]["tokens_per_s_median"] > 0
    elif name.startswith("mfu"):
        assert hw["gpu"] and r["peak_matmul"]["flops_per_s"] > 0
        assert r["passed"] == all(x["mfu_median"] >= r["goal"]["target"] for x in r["results"].values())


# --------------------------------------------------------------------------------------------- bench_pretrain (NSP)


def test_marker_corpus_names_the_topic_in_every_sentence():
    bp = benchmark("bench_pretrain")
    documents, topics = sb.data.generate_corpus_with_topics(30, seed=3)
    marked = bp.with_markers(documents, topics)
    assert [len(d) for d in marked] == [len(d) for d in documents]
    for doc, original, topic in zip(marked, documents, topics, strict=True):
        for s, o in zip(doc, original, strict=True):
            assert s.startswith(f"At the {bp.MARKERS[topic]}, ") and s.endswith(o[1:])
        assert sb.data.guess_topic(" ".join(doc)) == topic
    assert len(set(bp.MARKERS.values())) == len(bp.MARKERS)  # one marker per topic, all different


def test_transformers_teacher_computes_what_ours_does(tmp_path):
    """The bench's hf-marker run swaps in transformers' BertForPreTraining: same function, same weights."""
    bp = benchmark("bench_pretrain")
    ours = small_teacher().eval()
    sb.save_pretrained(ours, tmp_path)
    theirs = bp.TransformersTeacher(ours.config).eval()
    missing, unexpected = theirs.model.load_state_dict(
        __import__("transformers").BertForPreTraining.from_pretrained(tmp_path).state_dict(), strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    batch = padded_mlm_batch(97)
    types = (torch.arange(12)[None, :] >= 6).long().expand(4, -1) * batch["attention_mask"]
    positions = batch["labels"] != -100
    with torch.no_grad():
        a = ours(batch["input_ids"], batch["attention_mask"], types, mlm_positions=positions)
        b = theirs(batch["input_ids"], batch["attention_mask"], types, mlm_positions=positions)
    assert a.mlm_logits.shape == b.mlm_logits.shape == (int(positions.sum()), 97)
    assert (a.mlm_logits - b.mlm_logits).abs().max() < 1e-5 and (a.nsp_logits - b.nsp_logits).abs().max() < 1e-5


def test_pretrain_results_the_book_reads():
    path = RESULTS / "pretrain_tiny.json"
    assert path.is_file(), f"{path} is missing: chapter 4 reads it (python benchmarks/bench_pretrain.py)"
    r = json.loads(path.read_text())
    assert r["command"].startswith("python benchmarks/bench_pretrain.py")
    rows = {row["variant"]: row for row in r["variants"]}
    assert set(rows) == {"profile", "longer", "marker", "hf-marker"}
    p = rows["profile"]
    assert r["passed"] == {"time": p["wall_seconds"] <= 180, "nsp": p["heldout_nsp_accuracy"] >= 0.90,
                           "mlm_far_above_unigram": p["heldout_mlm_accuracy"] > 2 * p["unigram_mlm_accuracy"]}
    assert rows["longer"]["steps"] > p["steps"]
    assert all(0.9 < row["topic_rule_nsp_accuracy"] <= 1 for row in rows.values())
