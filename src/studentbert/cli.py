"""Command line: ``python -m studentbert {pretrain,distill,finetune,compare,ablation} --profile tiny|full ...``.

Every command writes checkpoints as it goes and resumes from the last one when it is run again with
the same ``--output-dir``. Under ``torchrun`` or ``accelerate launch`` the training runs on every
process with DDP.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .profiles import Profile, get_profile


def _train_overrides(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training overrides (default: the profile's)")
    g.add_argument("--max-steps", type=int)
    g.add_argument("--batch-size", type=int, help="global batch size, all processes together")
    g.add_argument("--learning-rate", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--mixed-precision", choices=["auto", "bf16", "no"])
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--no-resume", action="store_true", help="refuse to continue an existing checkpoint")


def _with_overrides(profile: Profile, section: str, args: argparse.Namespace) -> Profile:
    changes = {k: getattr(args, k) for k in ("max_steps", "batch_size", "learning_rate", "seed",
                                               "mixed_precision", "compile") if getattr(args, k) is not None}
    return profile.replace(**{section: dataclasses.replace(getattr(profile, section), **changes)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studentbert", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pretrain a BERT teacher with MLM + NSP")
    p.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    p.add_argument("--output-dir", type=Path, default=Path("runs/teacher"))
    _train_overrides(p)

    d = sub.add_parser("distill", help="distil a teacher into a DistilBERT student (triple loss)")
    d.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    d.add_argument("--teacher", type=Path, required=True, help="Hugging Face directory of a BertForPreTraining")
    d.add_argument("--output-dir", type=Path, default=Path("runs/student"))
    d.add_argument("--student-layers", type=int)
    d.add_argument("--alpha-ce", type=float, default=5.0)
    d.add_argument("--alpha-mlm", type=float, default=2.0)
    d.add_argument("--alpha-cos", type=float, default=1.0)
    d.add_argument("--temperature", type=float, default=2.0)
    d.add_argument("--init", choices=["teacher", "random"], default="teacher")
    d.add_argument("--restrict-ce-to-mask", action="store_true")
    _train_overrides(d)
    _downstream_parsers(sub)
    return parser


def _downstream_parsers(sub) -> None:
    """The subcommands of :mod:`studentbert.downstream`: finetune, compare, ablation."""
    f = sub.add_parser("finetune", help="fine-tune a teacher or student on the profile's task (optionally with "
                                        "task-specific distillation from a fine-tuned teacher)")
    f.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    f.add_argument("--model", type=Path, required=True, help="Hugging Face directory of a BERT or DistilBERT")
    f.add_argument("--output-dir", type=Path, default=Path("runs/finetune"))
    f.add_argument("--teacher", type=Path, help="fine-tuned teacher classifier: task-specific distillation")
    f.add_argument("--alpha", type=float, default=0.5, help="weight of the hard loss (task distillation)")
    f.add_argument("--temperature", type=float, default=2.0, help="temperature (task distillation)")
    _train_overrides(f)

    c = sub.add_parser("compare", help="teacher vs distilled student vs student without distillation")
    c.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    c.add_argument("--teacher", type=Path, required=True, help="pretrained teacher (BertForPreTraining directory)")
    c.add_argument("--student", type=Path, required=True, help="distilled student (DistilBertForMaskedLM directory)")
    c.add_argument("--output-dir", type=Path, default=Path("runs/compare"))

    a = sub.add_parser("ablation", help="DistilBERT's ablation: drop one loss term, or the teacher initialisation")
    a.add_argument("--profile", choices=["tiny", "full"], default="tiny")
    a.add_argument("--teacher", type=Path, required=True, help="pretrained teacher (BertForPreTraining directory)")
    a.add_argument("--output-dir", type=Path, default=Path("runs/ablation"))
    a.add_argument("--steps", type=int, help="distillation steps per row (default: the profile's)")


def _run_downstream(args: argparse.Namespace, profile: Profile) -> int:
    from . import downstream

    if args.command == "finetune":
        if args.no_resume and any(args.output_dir.glob("checkpoint-*")):
            raise SystemExit(f"{args.output_dir} holds a checkpoint and --no-resume was given: choose another "
                             f"--output-dir.")
        profile = _with_overrides(profile, "finetune", args)
        train, test = downstream.task_datasets(profile)
        out = downstream.finetune(args.model, train, test, args.output_dir, profile.finetune,
                                  profile.task.max_length, teacher_dir=args.teacher, alpha=args.alpha,
                                  temperature=args.temperature)
    elif args.command == "compare":
        out = downstream.compare(profile, args.teacher, args.student, args.output_dir)
    else:
        out = downstream.ablation(profile, args.teacher, args.output_dir, steps=args.steps)
    print(json.dumps(out, indent=2, default=str))
    print(f"saved in: {args.output_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    profile = get_profile(args.profile)
    if args.command in ("finetune", "compare", "ablation"):
        return _run_downstream(args, profile)
    if args.command == "pretrain":
        from .pretrain import pretrain

        out = pretrain(_with_overrides(profile, "pretrain", args), args.output_dir, resume=not args.no_resume)
    elif args.command == "distill":
        from .distill import distill
        from .losses import DistillationLossWeights

        profile = _with_overrides(profile, "distill", args)
        if args.student_layers is not None:
            profile = profile.replace(student_layers=args.student_layers)
        weights = DistillationLossWeights(args.alpha_ce, args.alpha_mlm, args.alpha_cos, args.temperature)
        out = distill(profile, args.teacher, args.output_dir, weights, init=args.init,
                      restrict_ce_to_mask=args.restrict_ce_to_mask, resume=not args.no_resume)
    results = out.parent / "results.json"
    if results.is_file():
        print(json.dumps(json.loads(results.read_text()), indent=2))
    print(f"saved: {out}")
    return 0
