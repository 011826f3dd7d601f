"""The distillation stage: task-agnostic distillation of a pretrained teacher into a DistilBERT student
(Sanh et al., 2019), on the documents it is given.

One step:

1. the frozen teacher reads the masked batch under ``torch.inference_mode`` and gives its MLM logits
   and last hidden states (no graph, no gradients: the teacher costs one forward pass);
2. the student, initialised from the teacher's layers, reads the same batch;
3. the triple loss ``5·T²·KL(teacher || student) + 2·MLM + 1·cosine`` (T = 2) is back-propagated
   through the student only.

As in the authors' code, the soft-target loss covers every real token (``positions = attention_mask``);
``restrict_ce_to_mask=True`` limits it to the masked tokens (cheaper, not the same objective).
The inputs are single segments: DistilBERT drops next-sentence prediction and token types.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .bert import BertModel
from .checkpoint import RESULTS
from .data import MLMCollator
from .data.segments import build_segment_examples
from .data.streaming import DEFAULT_WINDOW, TextStream
from .evaluation import evaluate_mlm, teacher_student_agreement
from .hf import Teacher, load_teacher, load_tokenizer, model_source, save_pretrained
from .profiles import Profile
from .student_init import check_compatible, default_layer_map, make_student
from .training import Trainer
from .triple_loss import DistillationLoss, DistillationLossWeights


def teacher_forward(teacher: Teacher, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    mlm_positions: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(MLM logits (M, V) at mlm_positions, or None without an MLM head; last hidden states (B, L, H))``."""
    if isinstance(teacher, BertModel):
        out, _ = teacher(input_ids, attention_mask)
        return None, out.last_hidden_state
    out = teacher(input_ids, attention_mask, mlm_positions=mlm_positions)
    return out.mlm_logits, out.encoder.last_hidden_state


class DistillationStep:
    """The loss function of one distillation step: ``(student, batch) -> (loss, terms)``.

    Keeps the frozen teacher and the :class:`~studentbert.triple_loss.DistillationLoss`. A teacher without an MLM
    head (a bare ``BertModel``) serves only a loss whose soft-target weight ``alpha_ce`` is 0.
    """

    def __init__(self, teacher: Teacher, loss: DistillationLoss, restrict_ce_to_mask: bool = False) -> None:
        if isinstance(teacher, BertModel) and loss.weights.alpha_ce > 0:
            raise ValueError("A teacher without an MLM head (a bare BertModel) has no soft targets: set alpha_ce=0.")
        self.teacher = teacher.eval().requires_grad_(False)
        self.loss = loss
        self.restrict_ce_to_mask = restrict_ce_to_mask

    def __call__(self, student: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch["attention_mask"]
        masked = batch["labels"] != -100  # (B, L)
        rows = masked if self.restrict_ce_to_mask else mask.bool()  # positions whose logits are compared
        w = self.loss.weights
        need_logits = w.alpha_ce > 0 or w.alpha_mlm > 0
        t_logits = t_hidden = None
        if w.alpha_ce > 0 or w.alpha_cos > 0:  # an MLM-only run (the no-teacher baseline) skips the teacher
            with torch.inference_mode():
                t_logits, t_hidden = teacher_forward(self.teacher, batch["input_ids"], mask,
                                                     rows if w.alpha_ce > 0 else masked)
                # Inference tensors (no copy needed): the loss only reads them, and what it saves for backward
                # is computed from them outside inference mode.
                t_logits = t_logits if w.alpha_ce > 0 else None  # (M, V)
                t_hidden = t_hidden if w.alpha_cos > 0 else None  # (B, L, H)
        s = student(batch["input_ids"], mask, mlm_positions=rows if need_logits else masked)
        out = self.loss(
            student_logits=s.mlm_logits.float() if need_logits else None,
            teacher_logits=t_logits.float() if t_logits is not None else None,
            labels=batch["labels"][rows] if need_logits else None,
            student_hidden=s.encoder.last_hidden_state.float(),
            teacher_hidden=t_hidden.float() if t_hidden is not None else None,
            attention_mask=mask,
        )
        return out.loss, {k: v for k, v in out.to_dict().items() if k != "loss"}


def _tokenizer_for(teacher: Teacher, teacher_dir: str, tokenizer: str | Path | None):
    """The teacher's own tokenizer (exactly its vocabulary), or ``tokenizer`` checked against the teacher."""
    vocab_size = teacher.config.vocab_size
    if tokenizer is None:
        tok = load_tokenizer(teacher_dir, "teacher")  # refuses a directory without tokenizer files
        if len(tok) != vocab_size:
            raise ValueError(
                f"The tokenizer in {teacher_dir} has {len(tok)} tokens but the teacher's vocabulary has "
                f"{vocab_size}: the student must share the teacher's tokenizer; save the teacher's own "
                f"tokenizer with it (tokenizer.save_pretrained('{teacher_dir}')), or pass --tokenizer DIR.")
        return tok
    tok = load_tokenizer(teacher_dir, "teacher", config=teacher.config, tokenizer_dir=tokenizer)
    vocab = tok.get_vocab()
    absent = [f"{name}_token" for name in ("cls", "sep", "pad", "unk", "mask")
              if getattr(tok, f"{name}_token", None) is None or not 0 <= vocab.get(str(getattr(tok, f"{name}_token")),
                                                                                   -1) < vocab_size]
    if absent:
        raise ValueError(f"The tokenizer {tokenizer} lacks {', '.join(absent)} (BERT's [CLS], [SEP], [PAD], [UNK], "
                         f"[MASK]) within the teacher's {vocab_size} tokens, so it does not fit the teacher: pass the "
                         f"tokenizer the teacher was trained with (--tokenizer DIR, or none for the teacher's own).")
    return tok


def _layers_for(teacher: Teacher, student_layers: int, init: str, layers: Sequence[int] | None) -> list[int] | None:
    """The teacher layers to copy, checked: one per student layer, each an index of the teacher's layers."""
    n = teacher.config.num_layers
    if layers is None:
        return default_layer_map(n, student_layers) if init == "teacher" else None
    layers = [int(i) for i in layers]
    if init != "teacher":
        raise ValueError(f"--layers {' '.join(map(str, layers))} names teacher layers to copy, but --init {init} "
                         f"copies none: drop --layers, or use --init teacher.")
    if len(layers) != student_layers:
        raise ValueError(f"--layers {' '.join(map(str, layers))} lists {len(layers)} teacher layers for a student "
                         f"of {student_layers} (--student-layers): give one teacher layer per student layer.")
    if any(not 0 <= i < n for i in layers):
        raise ValueError(f"--layers {' '.join(map(str, layers))}: the teacher has {n} layers, so every index must "
                         f"be in 0..{n - 1}.")
    return layers


def distill(
    profile: Profile,
    teacher_dir: str | Path,
    output_dir: str | Path,
    *,
    documents: Sequence[Sequence[str]] | None = None,
    heldout: Sequence[Sequence[str]] | None = None,
    weights: DistillationLossWeights | None = None,
    init: str = "teacher",
    restrict_ce_to_mask: bool = False,
    resume: bool | str = True,
    stop_after: int | None = None,
    tokenizer: str | Path | None = None,
    layers: Sequence[int] | None = None,
    run_config: dict | None = None,
    stream_files: Sequence[str | Path] | None = None,
    text_column: str = "text",
    shuffle_window: int = DEFAULT_WINDOW,
) -> Path:
    """Distil the teacher in ``teacher_dir`` into a student of ``profile.student_layers`` layers, on ``documents``.

    ``documents`` and ``heldout``: lists of documents, each a list of sentences (the profile's corpus,
    :func:`studentbert.data.profile_corpus`), cut into single segments with the teacher's tokenizer. The
    settings are ``profile.distill``, ``profile.student_layers`` and ``profile.data``. ``resume`` and
    ``stop_after`` are those of :meth:`studentbert.training.Trainer.train`.

    ``tokenizer``: a directory or hub id of the tokenizer (None: the teacher's own); it must fit the teacher (no
    more tokens than its embedding rows, BERT's special tokens within them). ``layers``: the teacher layers copied
    into the student, one per student layer (None: :func:`~studentbert.student_init.default_layer_map`).
    ``run_config``: the settings to record in ``run_config.json`` when training starts (the command line's),
    with the teacher layers copied added as ``layers``.

    ``stream_files``: local corpus files to stream instead of ``documents`` and ``heldout`` (a corpus larger than
    memory, :class:`~studentbert.data.streaming.TextStream`): their first ``profile.data.heldout_documents``
    documents are held out, their ``text_column`` is read in windows of ``shuffle_window`` lines or rows, shuffled
    within each window; the files' fingerprints join the settings a resume compares.

    Writes ``run_config.json`` (with ``run_config``), ``checkpoint.pt``, ``metrics.jsonl``, ``results.json`` and
    ``model/`` (a ``DistilBertForMaskedLM`` directory with the tokenizer, which ``AutoModelForMaskedLM`` loads) into
    ``output_dir``; returns ``model/``.
    """
    output_dir = Path(output_dir)
    weights = weights or DistillationLossWeights()
    teacher_dir = model_source(teacher_dir)  # a directory or a hub id; a missing directory is refused here
    teacher = load_teacher(teacher_dir, need_mlm_head=weights.alpha_ce > 0)
    tokenizer = _tokenizer_for(teacher, teacher_dir, tokenizer)
    default_layers = _layers_for(teacher, profile.student_layers, init, None)
    layers = _layers_for(teacher, profile.student_layers, init, layers)
    if profile.data.max_length > teacher.config.max_position_embeddings:
        raise ValueError(f"--max-length {profile.data.max_length} is longer than the teacher's position table "
                         f"({teacher.config.max_position_embeddings}): pass --max-length "
                         f"{teacher.config.max_position_embeddings} or less.")
    student = make_student(teacher, profile.student_layers, init, layers=layers, seed=profile.distill.seed)
    check_compatible(teacher.config, student.config)
    d = profile.data
    if stream_files is not None:
        train = TextStream(stream_files, tokenizer, d.max_length, text_column=text_column, seed=profile.distill.seed,
                           heldout_documents=d.heldout_documents, window=shuffle_window)
        heldout = train.heldout
    elif documents is None or heldout is None:
        raise ValueError("distill needs documents and heldout, or stream_files.")
    else:
        train = build_segment_examples(documents, tokenizer, max_length=d.max_length)
    heldout_examples = build_segment_examples(heldout, tokenizer, max_length=d.max_length)
    step = DistillationStep(teacher, DistillationLoss.from_weights(weights), restrict_ce_to_mask)
    collate = MLMCollator(tokenizer, seed=profile.distill.seed, return_token_type_ids=False)
    trainer = Trainer(student, step, train, collate, profile.distill, output_dir,
                      evaluate=lambda m: {**evaluate_mlm(m, heldout_examples, tokenizer),  # and its agreement
                                          **({} if isinstance(teacher, BertModel) else  # with the teacher
                                             teacher_student_agreement(teacher, m, heldout_examples, tokenizer))},
                      description=f"distillation ({profile.name})",
                      settings={  # everything besides profile.distill that changes the result: a resume compares it
                          "teacher": str(Path(teacher_dir).resolve()) if Path(teacher_dir).is_dir() else str(teacher_dir),
                          "teacher_config": teacher.config.to_dict(), "student_config": student.config.to_dict(),
                          "student_layers": profile.student_layers, "weights": dict(weights.__dict__),
                          "init": init, "restrict_ce_to_mask": restrict_ce_to_mask, "data": dict(vars(d)),
                          **({"streaming": train.settings()} if stream_files is not None else {}),
                          # the layers only when chosen: a checkpoint of an older version has no such key
                          **({"layers": layers} if layers != default_layers else {})})
    step.teacher.to(trainer.accelerator.device)
    if run_config is not None and trainer.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "run_config.json").write_text(json.dumps({**run_config, "layers": layers}, indent=2, default=str))
    t0 = time.perf_counter()
    final = trainer.train(resume=resume, stop_after=stop_after)
    if trainer.step < profile.distill.max_steps:
        return output_dir
    if trainer.is_main:
        results = {
            **{f"heldout_student_{k}": v for k, v in final.items()},
            **({f"heldout_teacher_{k}": v for k, v in evaluate_mlm(teacher, heldout_examples, tokenizer).items()}
               if not isinstance(teacher, BertModel) else {}),  # a bare encoder has no MLM head to evaluate
            "teacher": str(teacher_dir), "teacher_class": type(teacher).__name__,
            "weights": weights.__dict__, "init": init, "restrict_ce_to_mask": restrict_ce_to_mask,
            "student_layers": profile.student_layers, "layers": layers, "steps": trainer.step,
            "history": trainer.history, "seconds": time.perf_counter() - t0,
            "device": str(trainer.accelerator.device),
        }
        save_pretrained(student, output_dir / "model", tokenizer)
        (output_dir / RESULTS).write_text(json.dumps(results, indent=2))
    trainer.accelerator.wait_for_everyone()
    return output_dir / "model"
