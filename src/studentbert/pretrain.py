"""The pretraining stage: a BERT teacher trained with masked language modelling + next-sentence prediction
(Devlin et al., 2019) on the documents it is given.

The loss of one batch is

    L = CE(MLM logits at the masked positions, original tokens) + CE(NSP logits, IsNext/NotNext),

both averaged (the first over the masked tokens, the second over the pairs). The MLM logits are computed
only at the masked positions (``mlm_positions``): the other 85% of positions carry no loss, so their
``(H x V)`` projection would be wasted work.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from .bert import BertForPreTraining
from .checkpoint import RESULTS
from .data import MLMCollator, build_pretraining_examples
from .evaluation import evaluate_pretraining, unigram_baseline
from .hf import save_pretrained
from .profiles import Profile
from .training import Trainer


def pretraining_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """MLM + NSP loss of a batch from :class:`~studentbert.data.MLMCollator`; also returns both terms."""
    positions = batch["labels"] != -100  # (B, L) masked tokens
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], mlm_positions=positions)
    mlm = F.cross_entropy(out.mlm_logits.float(), batch["labels"][positions])  # (M, V) vs (M,)
    nsp = F.cross_entropy(out.nsp_logits.float(), batch["next_sentence_label"])  # (B, 2) vs (B,)
    return mlm + nsp, {"mlm_loss": mlm.item(), "nsp_loss": nsp.item()}


def pretrain(profile: Profile, output_dir: str | Path, *, documents: Sequence[Sequence[str]],
             heldout: Sequence[Sequence[str]], tokenizer, resume: bool | str = True, stop_after: int | None = None,
             allow_changes: Iterable[str] | None = None, run_config: dict | None = None) -> Path:
    """Pretrain a teacher on ``documents``; returns the Hugging Face directory of the result.

    ``documents`` and ``heldout`` are lists of documents, each a list of sentences (the profile's corpus:
    :func:`studentbert.data.profile_corpus`); ``tokenizer`` is a BERT WordPiece tokenizer (trained on them, or
    pretrained). The model and optimisation settings are ``profile.teacher``, ``profile.data.max_length``,
    ``profile.data.seed`` and ``profile.pretrain``.

    Writes into ``output_dir``: ``run_config.json`` (``run_config``, the command line's settings, when given),
    ``checkpoint.pt`` (as it goes; a rerun resumes from it), ``metrics.jsonl``,
    ``results.json`` (final held-out metrics, baselines, time) and ``model/`` (``AutoModelForPreTraining``
    loads it; the tokenizer is saved beside the weights). ``resume`` and ``allow_changes`` are those of
    :meth:`studentbert.training.Trainer.train`: a resume with another data or model setting is refused.
    """
    output_dir = Path(output_dir)
    d = profile.data
    train_docs, heldout_docs = list(documents), list(heldout)
    t0 = time.perf_counter()
    train = build_pretraining_examples(train_docs, tokenizer, max_length=d.max_length, seed=d.seed)
    heldout = build_pretraining_examples(heldout_docs, tokenizer, max_length=d.max_length, seed=d.seed + 1)
    config = profile.teacher.replace(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    profile.teacher.check_sequence_length(d.max_length)
    torch.manual_seed(profile.pretrain.seed)
    model = BertForPreTraining(config)
    collate = MLMCollator(tokenizer, seed=profile.pretrain.seed)
    trainer = Trainer(model, pretraining_loss, train, collate, profile.pretrain, output_dir,
                      evaluate=lambda m: evaluate_pretraining(m, heldout, tokenizer),
                      description=f"pretraining ({profile.name})",
                      settings={"data": dataclasses.asdict(d), "model": config.to_dict()})
    if run_config is not None and trainer.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "run_config.json").write_text(json.dumps(run_config, indent=2, default=str))
    final = trainer.train(resume=resume, stop_after=stop_after, allow_changes=allow_changes)
    if trainer.step < profile.pretrain.max_steps:
        return output_dir  # interrupted on purpose; a rerun resumes
    if trainer.is_main:
        results = {
            **{f"heldout_{k}": v for k, v in final.items()},
            "unigram_mlm_accuracy": unigram_baseline(train, heldout, tokenizer),
            "chance_nsp_accuracy": 0.5,
            "train_pairs": len(train), "heldout_pairs": len(heldout),
            "steps": trainer.step, "history": trainer.history, "seconds": time.perf_counter() - t0,
            "device": str(trainer.accelerator.device), "profile": profile.name,
        }
        save_pretrained(model, output_dir / "model", tokenizer)
        (output_dir / RESULTS).write_text(json.dumps(results, indent=2))
    trainer.accelerator.wait_for_everyone()
    return output_dir / "model"
