"""The command line's downstream subcommands: ``finetune`` (your labelled data, task distillation, unlabelled
text), ``compare`` and ``ablation``: their parsers and how they run.

:mod:`studentbert.cli` builds the parser and handles errors; it hands these subcommands' arguments here (the
module keeps cli.py within its length). ``finetune`` takes ``--config FILE`` (YAML or JSON, keys the flag names;
:mod:`studentbert.config_file` reads it, and a flag on the command line wins) and ``--print-config``, as
``distill`` and ``pretrain`` do; a run records the settings in force in ``OUTPUT_DIR/run_config.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from .config_file import (
    NOT_SETTINGS,
    TRAIN_OVERRIDES,
    add_settings_file_options,
    dump_settings,
    with_overrides,
)
from .profiles import Profile


def add_downstream_parsers(sub, make_sub: Callable[..., argparse.ArgumentParser],
                           train_overrides: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``finetune``, ``compare`` and ``ablation`` to the subparsers ``sub``; ``make_sub(sub, name, help)``
    makes a subcommand's parser (with ``--profile`` and ``--debug``), ``train_overrides(parser)`` adds the
    training flags."""
    f = make_sub(sub, "finetune", "fine-tune a BERT or DistilBERT as a classifier on your labelled data (or the "
                                  "profile's task), optionally with task-specific distillation from a fine-tuned "
                                  "teacher")
    f.add_argument("--model", type=Path, help="Hugging Face directory of a BERT or DistilBERT (None: --teacher, "
                                              "with --student-layers)")
    f.add_argument("--output-dir", type=Path, default=Path("runs/finetune"),
                   help="the run directory: checkpoint.pt, metrics.jsonl, results.json, run_config.json, model/")
    f.add_argument("--tokenizer", type=Path, help="directory of the model's tokenizer, if --model has none")
    f.add_argument("--teacher", type=Path, help="fine-tuned teacher classifier (any transformers BERT sequence "
                                                "classifier): task-specific distillation")
    f.add_argument("--student-layers", type=int, help="train a DistilBERT of this many layers initialised from "
                                                       "--model's encoder (every other layer) instead of --model")
    f.add_argument("--alpha", type=float, default=0.5, help="weight of the hard loss (task distillation)")
    f.add_argument("--temperature", type=float, default=2.0, help="temperature T (task distillation)")
    t = f.add_argument_group("labelled data (default: the profile's task)")
    t.add_argument("--train", type=str, help="training file: CSV, JSON Lines or parquet")
    t.add_argument("--validation", type=str, help="validation file (None: a seeded 10%% of --train, or the "
                                                  "dataset's --validation-split)")
    t.add_argument("--dataset", type=str, help="a datasets id (or dataset directory) instead of files, e.g. glue")
    t.add_argument("--dataset-config", type=str, help="the dataset's configuration, e.g. sst2")
    t.add_argument("--train-split", default="train", help="the dataset's training split")
    t.add_argument("--validation-split", default="validation", help="the dataset's validation split")
    t.add_argument("--text-column", default="text", help="the column of the text")
    t.add_argument("--text-pair-column", help="the column of the second text of a sentence-pair task (MNLI, QQP)")
    t.add_argument("--label-column", default="label", help="the column of the labels: class ids, or class names "
                                                           "(mapped to ids in sorted order, saved as id2label)")
    t.add_argument("--max-length", type=int, help="inputs are truncated to this many tokens (None: the profile's)")
    t.add_argument("--num-labels", type=int, help="the number of classes (None: from the labels)")
    t.add_argument("--unlabeled", type=str, metavar="FILE",
                   help="unlabelled in-domain text (CSV, JSON Lines or parquet with the --text-column, and "
                        "--text-pair-column, of --train; a label column is ignored), added to the training rows: "
                        "needs --teacher, whose soft targets are the only loss on these rows")
    add_settings_file_options(f)
    train_overrides(f)

    c = make_sub(sub, "compare", "teacher vs distilled student vs student without distillation")
    c.add_argument("--teacher", type=Path, required=True, help="pretrained teacher (BertForPreTraining directory)")
    c.add_argument("--student", type=Path, required=True, help="distilled student (DistilBertForMaskedLM directory)")
    c.add_argument("--output-dir", type=Path, default=Path("runs/compare"))

    a = make_sub(sub, "ablation", "DistilBERT's ablation: drop one loss term, or the teacher initialisation")
    a.add_argument("--teacher", type=Path, required=True, help="pretrained teacher (BertForPreTraining directory)")
    a.add_argument("--output-dir", type=Path, default=Path("runs/ablation"))
    a.add_argument("--steps", type=int, help="distillation steps per row (default: the profile's)")


def finetune_settings(args: argparse.Namespace, profile: Profile) -> dict:
    """Every ``finetune`` setting in force: the flags' (and ``--config``'s) values, the profile's where a flag is
    None (``profile`` already holds the training overrides): what ``--print-config`` prints and
    ``run_config.json`` records."""
    defaults = {**{k: getattr(profile.finetune, k) for k in TRAIN_OVERRIDES}, "max_length": profile.task.max_length}
    values = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and k != "command"}
    return {k: defaults.get(k) if v is None else v for k, v in values.items()}


def _finetune(args: argparse.Namespace, profile: Profile, resume: bool | str) -> dict:
    """Run ``finetune`` from its arguments, and write the report card of a finished run."""
    from .data import task_datasets
    from .finetune import finetune

    profile = with_overrides(profile, "finetune", args)
    settings = finetune_settings(args, profile)
    if args.print_config:
        print(dump_settings(settings, args.print_config))
        return {}
    if args.unlabeled is not None and args.teacher is None:
        raise ValueError("--unlabeled needs --teacher DIR (a fine-tuned classifier): the teacher's soft targets are "
                         "the loss on unlabelled rows. Pass --teacher, or leave out --unlabeled.")
    model = args.model if args.model is not None else (args.teacher if args.student_layers else None)
    if model is None:
        raise ValueError("finetune needs --model DIR (or --teacher DIR with --student-layers N).")
    for flag, path in (("--model", model), ("--teacher", args.teacher), ("--tokenizer", args.tokenizer)):
        if path is not None and not Path(path).is_dir():
            raise FileNotFoundError(f"No such {flag} directory: {path}. Pass an existing model directory.")
    num_labels = None
    if args.train is not None or args.dataset is not None:
        from .data.labelled import load_labelled

        if args.train is not None and args.dataset is not None:
            raise ValueError("Pass --train FILE or --dataset ID, not both.")
        task = load_labelled(args.train or args.dataset, args.validation, args.text_column,
                             args.text_pair_column, args.label_column, args.num_labels, args.dataset_config,
                             args.train_split, args.validation_split)
        train, test, names, num_labels = task.train, task.validation, task.label_names, task.num_labels
    else:
        if args.validation is not None:
            raise ValueError("--validation needs --train (or use --dataset with --validation-split).")
        train, test = task_datasets(profile)
        names = None
    unlabeled = None
    if args.unlabeled is not None:
        from .data.labelled import load_unlabeled

        unlabeled = load_unlabeled(args.unlabeled, args.text_column, args.text_pair_column)
    max_length = args.max_length if args.max_length is not None else profile.task.max_length
    out = finetune(model, train, test, args.output_dir, profile.finetune, max_length,
                   teacher_dir=args.teacher, alpha=args.alpha, temperature=args.temperature, resume=resume,
                   num_labels=num_labels, label_names=names, tokenizer_dir=args.tokenizer,
                   student_layers=args.student_layers, unlabeled=unlabeled, run_config=settings)
    if out.get("completed") and int(os.environ.get("RANK", "0")) == 0:  # a finished run, the main process
        from .report_card import REPORT_FILES, write_report_card

        card = write_report_card(args.output_dir, out["model_dir"], test, teacher_dir=args.teacher,
                                 tokenizer_dir=args.tokenizer, max_length=max_length, device=out.get("device"))
        out["report_card"] = {"files": [str(Path(args.output_dir) / f) for f in REPORT_FILES],
                              "verdict": card["verdict"]}
    return out


def run_downstream(args: argparse.Namespace, profile: Profile, resume: bool | str) -> int:
    """Run ``finetune``, ``compare`` or ``ablation``; print its results (or, ``--print-config``, the settings)."""
    from .experiments import ablation, compare

    if args.command == "finetune":
        out = _finetune(args, profile, resume)
        if args.print_config:
            return 0
    elif args.command == "compare":
        out = compare(profile, args.teacher, args.student, args.output_dir)
    else:
        out = ablation(profile, args.teacher, args.output_dir, steps=args.steps)
    print(json.dumps(out, indent=2, default=str))
    print(f"saved in: {args.output_dir}")
    return 0
