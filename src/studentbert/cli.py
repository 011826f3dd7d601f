"""Command line: ``python -m studentbert {pretrain,distill,finetune,compare,ablation} --profile tiny|full ...``.

Every command writes checkpoints as it goes and resumes from the last one when it is run again with
the same ``--output-dir`` (``--restart`` starts over, ``--no-resume`` refuses an existing checkpoint). Under
``torchrun`` or ``accelerate launch`` the training runs on every process with DDP.

A user error (a missing directory, a bad setting, a corrupt checkpoint, a changed setting on resume, a
locked or unwritable output directory, a full disk) prints one line, ``error: ...``, on stderr and exits
with status 2 (``--debug`` shows the traceback instead); a run that diverges (a non-finite loss) exits
with 1; SIGTERM and Ctrl-C save the current step and exit with 143 and 130.

``pretrain`` and ``distill`` take your own corpus (``--corpus``: files, directories, globs or a datasets id;
:mod:`studentbert.data.corpora`), tokenizer and settings; a profile only supplies the defaults. ``--config FILE``
(YAML or JSON, keys the flag names) holds any of their flags, and the command line overrides it
(:mod:`studentbert.config_file`); ``--print-config`` prints the settings in force and exits, and a run writes
them into ``OUTPUT_DIR/run_config.json`` when its training starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
from pathlib import Path

from .config_file import (
    Parser,
    add_settings_file_options,
    dump_settings,
    profile_for,
    read_settings_file,
    settings_in_force,
    settings_to_argv,
)
from .profiles import Profile, get_profile

EXAMPLES = """examples:
  python -m studentbert pretrain --profile tiny --output-dir runs/teacher
  python -m studentbert distill --profile tiny --teacher runs/teacher/model --output-dir runs/student
  python -m studentbert distill --teacher bert-base-uncased --corpus notes/*.txt tickets.jsonl \\
      --student-layers 6 --layers 0 2 4 7 9 11 --config distill.yaml --output-dir runs/my-student  # your corpus
  python -m studentbert distill --config distill.yaml --max-steps 100 --print-config   # the settings in force
  python -m studentbert distill --teacher runs/teacher/model --output-dir runs/student \\
      --learning-rate 5e-4 --override-on-resume learning_rate      # resume with a lower learning rate
  python -m studentbert finetune --model bert-dir --train train.csv --validation dev.csv \\
      --text-column review --label-column stars --output-dir runs/teacher-ft     # your own labelled data
  python -m studentbert finetune --model runs/teacher-ft/model --teacher runs/teacher-ft/model \\
      --student-layers 3 --train train.csv --validation dev.csv --output-dir runs/student-ft  # task distillation
exit status: 0 done, 1 the run diverged, 2 a user error (one line on stderr; --debug for the traceback)"""


def _train_overrides(parser: argparse.ArgumentParser) -> None:
    """The profile's TrainConfig, overridable, and how to resume."""
    g = parser.add_argument_group("training overrides (default None: the profile's)")
    g.add_argument("--max-steps", type=int, help="optimizer steps")
    g.add_argument("--batch-size", type=int, help="global batch size: all processes and micro-batches together")
    g.add_argument("--learning-rate", type=float, help="peak learning rate (linear warm-up and decay)")
    g.add_argument("--seed", type=int, help="seed of the initialisation, the data order and dropout")
    g.add_argument("--save-every", type=int, help="steps between checkpoints (0: only at the end)")
    g.add_argument("--eval-every", type=int, help="steps between held-out evaluations (0: only at the end)")
    g.add_argument("--mixed-precision", choices=["auto", "bf16", "fp16", "no"],
                   help="auto: bf16 on a GPU, none on a CPU; fp16 (loss scaling) needs a CUDA GPU")
    g.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model")
    g.add_argument("--gradient-accumulation-steps", type=int,
                   help="micro-batches per optimizer step (the batch size stays the global one)")
    r = parser.add_argument_group("resuming")
    how = r.add_mutually_exclusive_group()
    how.add_argument("--no-resume", action="store_true", help="refuse to continue an existing checkpoint")
    how.add_argument("--restart", action="store_true",
                     help="start over: move checkpoint.pt and metrics.jsonl aside to *.old")
    r.add_argument("--override-on-resume", nargs="+", default=[], choices=["learning_rate", "max_steps"],
                   metavar="KEY", help="let this resume change these settings (learning_rate, max_steps: "
                                       "extend only); recorded in the checkpoint's history and metrics.jsonl")


def _data_options(parser: argparse.ArgumentParser, command: str) -> None:
    """Where the text comes from and how it is cut (your corpus and tokenizer, or the profile's); settings files."""
    g = parser.add_argument_group("corpus and tokenizer (default None: the profile's)")
    g.add_argument("--corpus", nargs="+", metavar="SOURCE",
                   help="your corpus: .txt files (one text per line), .jsonl/.json, .csv/.tsv or .parquet files (the "
                        "--text-column of every row), directories of them, globs, or a datasets id; every text is a "
                        "document, cut into sentences")
    g.add_argument("--corpus-config", help="the configuration of a --corpus datasets id, e.g. wikitext-2-raw-v1")
    g.add_argument("--split", default="train", help="the split of a --corpus datasets id")
    g.add_argument("--text-column", default="text", help="the column of the text in --corpus tables and datasets")
    g.add_argument("--heldout-documents", type=int, help="documents held out for evaluation (None: the profile's; "
                                                          "of --corpus, a tenth, at most the profile's; with "
                                                          "--streaming, the first ones, as many as the profile's)")
    if command == "distill":
        g.add_argument("--tokenizer", help="a tokenizer directory or hub id that fits the teacher (None: the "
                                           "teacher's own)")
    else:
        g.add_argument("--tokenizer", help="a tokenizer directory or hub id (None: the profile's; tiny has none, so "
                                           "with --corpus a WordPiece of --vocab-size is trained on it and saved in "
                                           "OUTPUT_DIR/tokenizer)")
        g.add_argument("--vocab-size", type=int, help="the vocabulary of a WordPiece trained on the corpus")
    g.add_argument("--max-length", type=int, help="tokens per example, [CLS] and [SEP] included")
    g.add_argument("--streaming", action="store_true",
                   help="a corpus larger than memory: read the --corpus files window by window instead of loading "
                        "them (local files only; the first --heldout-documents documents are held out)"
                        + ("" if command == "distill" else "; distill only, for now"))
    if command == "distill":
        g.add_argument("--shuffle-window", type=int, default=4096, metavar="N",
                       help="with --streaming: the lines or rows read, tokenized and shuffled together")
    add_settings_file_options(parser)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help of every option; the examples kept as written."""


def _sub(sub, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES, formatter_class=_HelpFormatter)
    p.add_argument("--profile", choices=["tiny", "full"], default="tiny",
                   help="the settings: tiny (a 2-core CPU, offline) or full (one GPU)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m studentbert", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = sub.choices

    p = _sub(sub, "pretrain", "pretrain a BERT teacher with MLM + NSP")
    p.add_argument("--output-dir", type=Path, default=Path("runs/teacher"),
                   help="the run directory: checkpoint.pt, metrics.jsonl, results.json, run_config.json, model/")
    _data_options(p, "pretrain")
    _train_overrides(p)

    d = _sub(sub, "distill", "distil a teacher into a DistilBERT student (triple loss)")
    d.add_argument("--teacher", type=str, help="required: a Hugging Face directory of a BERT with an MLM head "
                                               "(BertForPreTraining, BertForMaskedLM), or a hub id such as "
                                               "bert-base-uncased")
    d.add_argument("--output-dir", type=Path, default=Path("runs/student"),
                   help="the run directory: checkpoint.pt, metrics.jsonl, results.json, run_config.json, model/")
    m = d.add_argument_group("student and loss")
    m.add_argument("--student-layers", type=int, help="layers of the student (None: the number of --layers, or "
                                                      "the profile's)")
    m.add_argument("--layers", type=int, nargs="+", metavar="I",
                   help="the teacher layers copied into the student, one per student layer, e.g. 0 2 4 7 9 11 "
                        "(None: evenly spread, the first and the last kept)")
    m.add_argument("--init", choices=["teacher", "random"], default="teacher",
                   help="copy the teacher's embeddings, --layers and MLM head, or start at random")
    m.add_argument("--alpha-ce", type=float, default=5.0, help="weight of the soft-target loss L_ce")
    m.add_argument("--alpha-mlm", type=float, default=2.0, help="weight of the masked-LM loss L_mlm")
    m.add_argument("--alpha-cos", type=float, default=1.0, help="weight of the hidden-state cosine loss L_cos")
    m.add_argument("--temperature", type=float, default=2.0, help="softmax temperature T of L_ce")
    m.add_argument("--restrict-ce-to-mask", action=argparse.BooleanOptionalAction, default=False,
                   help="compare the soft targets at the masked tokens only (cheaper; not the authors' objective)")
    _data_options(d, "distill")
    _train_overrides(d)
    _downstream_parsers(sub)
    from .export import add_export_parser

    export = add_export_parser(sub)  # no profile: a model directory in, ONNX files out
    export.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _downstream_parsers(sub) -> None:
    """The subcommands of :mod:`studentbert.finetune` and :mod:`studentbert.experiments`, in
    :mod:`studentbert.cli_tasks`."""
    from .cli_tasks import add_downstream_parsers

    add_downstream_parsers(sub, _sub, _train_overrides)


def _run_downstream(args: argparse.Namespace, profile: Profile, resume: bool | str) -> int:
    """Run ``finetune``, ``compare`` or ``ablation``: :func:`studentbert.cli_tasks.run_downstream`."""
    from .cli_tasks import run_downstream

    return run_downstream(args, profile, resume)


def check_output_dir(path: Path) -> None:
    """Refuse at startup an output directory that is a file, cannot be written, or is locked by another run."""
    from .checkpoint import LOCK, OutputDirLock

    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--output-dir {path} is a file, not a directory: choose another --output-dir")
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--output-dir {path}: {existing} is not a writable directory")
    if (path / LOCK).exists():
        OutputDirLock(path).acquire().release()  # raises OutputDirLockedError naming the owner


def _run(args: argparse.Namespace) -> int:
    from .checkpoint import RESULTS, allow_resume_changes

    if args.command == "export":
        from .export import run_export

        return run_export(args)
    profile = get_profile(args.profile)
    settings = None
    if args.command in ("pretrain", "distill"):
        profile = profile_for(args, profile)
        settings = settings_in_force(args, profile)
        if args.print_config:
            print(dump_settings(settings, args.print_config))
            return 0
    if hasattr(args, "output_dir"):
        check_output_dir(args.output_dir)
    resume = "restart" if getattr(args, "restart", False) else not getattr(args, "no_resume", False)
    with allow_resume_changes(getattr(args, "override_on_resume", [])):
        if settings is None:
            return _run_downstream(args, profile, resume)
        out = _train(args, profile, resume, settings)
    results = out.parent / RESULTS
    if results.is_file():
        print(json.dumps(json.loads(results.read_text()), indent=2))
    print(f"saved: {out}")
    return 0


def _documents(args: argparse.Namespace, profile: Profile) -> tuple[Profile, list, list]:
    """``(profile, training documents, held-out documents)``: of --corpus (the profile then records how many
    were held out), or the profile's corpus; with --streaming ``(profile, the --corpus files, None)``."""
    if getattr(args, "streaming", False):
        from .data.streaming import stream_files

        files = stream_files(args.corpus or [])
        count = profile.data.heldout_documents if args.heldout_documents is None else args.heldout_documents
        if count < 1:
            raise ValueError(f"--heldout-documents {count} must be >= 1: the first documents of the corpus are held "
                             f"out for evaluation.")
        return profile.replace(data=dataclasses.replace(profile.data, heldout_documents=count)), files, None
    if not args.corpus:
        from .artifacts import corpus

        return profile, *corpus(profile)
    from .data.corpora import load_corpus, split_heldout

    documents = load_corpus(args.corpus, args.text_column, args.corpus_config, args.split)
    train, heldout = split_heldout(documents, args.heldout_documents, at_most=profile.data.heldout_documents,
                                   seed=profile.data.seed)
    return profile.replace(data=dataclasses.replace(profile.data, heldout_documents=len(heldout))), train, heldout


def _check_tokenizer_path(name: str) -> None:
    """A --tokenizer that names a local directory (not a hub id) must exist."""
    path = Path(name).expanduser()
    local = (name.startswith((".", "/", "~")) or name.count("/") > 1
             or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()))
    if (local or path.exists()) and not path.is_dir():
        raise FileNotFoundError(f"No such --tokenizer directory: {name}. Pass a directory written by "
                                f"tokenizer.save_pretrained, or a hub id such as bert-base-uncased.")


def _pretrain_tokenizer(args: argparse.Namespace, profile: Profile, documents: list, resume: bool | str):
    """--tokenizer; else the profile's; else (tiny, with --corpus) a WordPiece trained on the corpus, saved in
    OUTPUT_DIR/tokenizer, which a resume of the run's checkpoint reads back."""
    from .artifacts import tokenizer_for
    from .data import load_tokenizer, train_wordpiece

    if args.tokenizer is not None:
        _check_tokenizer_path(args.tokenizer)
        return load_tokenizer(args.tokenizer)
    if not args.corpus or profile.data.tokenizer is not None:
        return tokenizer_for(profile)
    path = args.output_dir / "tokenizer"
    if resume is True and (path / "tokenizer.json").is_file() and (args.output_dir / "checkpoint.pt").is_file():
        return load_tokenizer(path)
    return train_wordpiece(documents, vocab_size=profile.data.vocab_size, output_dir=path)


def _train(args: argparse.Namespace, profile: Profile, resume: bool | str, settings: dict) -> Path:
    """Run ``pretrain`` or ``distill``; returns the model directory (or the run directory, if interrupted)."""
    if args.command == "pretrain":
        from .pretrain import pretrain

        if args.streaming:
            raise ValueError("pretrain does not stream yet: drop --streaming (the corpus is then read into memory), "
                             "or distil from an existing teacher with distill --streaming.")

        profile, documents, heldout = _documents(args, profile)
        tokenizer = _pretrain_tokenizer(args, profile, documents, resume)
        return pretrain(profile, args.output_dir, documents=documents, heldout=heldout, tokenizer=tokenizer,
                        resume=resume, run_config={**settings, "heldout_documents": len(heldout)})
    from .distill import distill
    from .hf import model_source
    from .triple_loss import DistillationLossWeights

    if args.teacher is None:
        raise ValueError("distill needs a teacher: pass --teacher DIR_OR_HUB_ID (or the key teacher in --config).")
    teacher = model_source(args.teacher)  # a missing directory is refused before anything runs
    if args.tokenizer is not None:
        _check_tokenizer_path(args.tokenizer)
    weights = DistillationLossWeights(args.alpha_ce, args.alpha_mlm, args.alpha_cos, args.temperature)
    profile, documents, heldout = _documents(args, profile)
    data = {"documents": documents} if heldout is not None else {  # --streaming: the files, read as it goes
        "stream_files": documents, "text_column": args.text_column, "shuffle_window": args.shuffle_window}
    return distill(profile, teacher, args.output_dir, heldout=heldout, weights=weights, **data,
                   init=args.init, restrict_ce_to_mask=args.restrict_ce_to_mask, resume=resume,
                   tokenizer=args.tokenizer, layers=args.layers,
                   run_config={**settings, "heldout_documents": profile.data.heldout_documents
                               if heldout is None else len(heldout)})


def _with_settings_file(parser: argparse.ArgumentParser, argv: list[str], args: argparse.Namespace):
    """The arguments with the --config file's settings as flags before the command line's (which win)."""
    flags = settings_to_argv(read_settings_file(args.config), parser.subcommands[args.command], args.config,
                             args.command)
    at = argv.index(args.command) + 1
    return parser.parse_args([*argv[:at], *flags, *argv[at:]])


def _is_user_error(e: BaseException) -> bool:
    from .checkpoint import CheckpointError

    if isinstance(e, (ValueError, CheckpointError, FileNotFoundError, FileExistsError, NotADirectoryError,
                      IsADirectoryError, PermissionError)):
        return True  # ConfigError, CheckpointMismatchError, IncompatibleModelsError, TokenizerError are ValueErrors
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 diverged, 2 user error, 130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None) is not None:
            args = _with_settings_file(parser, argv, args)
        return _run(args)
    except KeyboardInterrupt as e:  # the Trainer saved the step first (its message says so)
        if args.debug:
            raise
        print(f"interrupted: {e}" if str(e) else "interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug or not (_is_user_error(e) or isinstance(e, FloatingPointError)):
            raise
        message = e.strerror if isinstance(e, OSError) and e.strerror and e.errno == errno.ENOSPC else str(e)
        print(f"error: {' '.join(message.split()) or type(e).__name__}", file=sys.stderr)
        return 1 if isinstance(e, FloatingPointError) else 2
