"""Settings files for the command line: ``--config FILE`` (YAML or JSON) and ``--print-config``.

A settings file is a mapping whose keys are a subcommand's flags without their leading dashes, with dashes or
underscores (``learning-rate`` or ``learning_rate``); its values are what the flags take (a list for a flag
of several values, ``true``/``false`` for a switch, ``null`` for the default)::

    teacher: runs/teacher/model
    corpus: [notes/*.txt, reports.jsonl]
    layers: [0, 2, 4, 7, 9, 11]
    learning_rate: 5e-4

:func:`settings_to_argv` turns the file into flags that are placed *before* the command line's, so argparse
checks them as it checks typed flags (types, choices) and a flag on the command line wins over the file. An
unknown key, a file that does not parse and a value that argparse refuses are :class:`SettingsFileError`\\ s
(one line each). ``--print-config`` prints the settings in force in the same format (:func:`dump_settings`):
its output is a settings file. The flags that say how to run rather than what to train (``--restart``,
``--no-resume``, ``--override-on-resume``, ``--debug``) are not settings.

A profile supplies the defaults and does not confine the run: :func:`profile_for` puts the flags' values in
place of the profile's (training, student, corpus, tokenizer), and :func:`settings_in_force` lists every
setting with the profile's value where no flag gave one: what ``--print-config`` prints and
``run_config.json`` records.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any

from .profiles import Profile

NOT_SETTINGS = frozenset({"help", "config", "print_config", "debug", "restart", "no_resume", "override_on_resume"})
"""Destinations of flags that a settings file may not hold."""


class SettingsFileError(ValueError):
    """A ``--config`` file that cannot be read, or holds an unknown key or a value its flag refuses."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`SettingsFileError` while it checks a settings file's flags
    (``settings_file`` set), instead of printing its usage and exiting."""

    settings_file: str | None = None

    def error(self, message: str):  # type: ignore[override]
        if self.settings_file is not None:
            raise SettingsFileError(f"The --config file {self.settings_file}: {message}.")
        super().error(message)


def add_settings_file_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--print-config``, in a "settings files" group of ``parser``."""
    s = parser.add_argument_group("settings files")
    s.add_argument("--config", metavar="FILE", help="a YAML or JSON file of settings: keys are these flags' names "
                                                    "(with - or _); a flag given on the command line wins")
    s.add_argument("--print-config", nargs="?", const="yaml", choices=["yaml", "json"],
                   help="print the settings in force (flags, --config, the profile's defaults) and exit without "
                        "training; the output is a --config file")


def setting_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """``{destination: action}`` of the flags of ``parser`` that a settings file may set."""
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in NOT_SETTINGS}


def read_settings_file(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``, ``.yml``, anything else) or JSON (``.json``) file; an empty file is ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such --config file: {path}. Pass a YAML or JSON file whose keys are flag names.")
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        text = path.read_text(encoding="utf-8")
        if kind == "JSON":
            data = json.loads(text) if text.strip() else None
        else:
            import yaml

            data = yaml.safe_load(text)
    except ImportError:
        raise SettingsFileError(f"Reading the YAML file {path} needs PyYAML (pip install pyyaml); or write it as "
                                f"JSON (a .json file).") from None
    except Exception as error:  # json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError
        mark = getattr(error, "problem_mark", None)  # YAML's: where it went wrong
        what = (f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
                if mark is not None and getattr(error, "problem", None) else " ".join(str(error).split())[:200])
        raise SettingsFileError(f"The --config file {path} does not parse as {kind} ({type(error).__name__}: "
                                f"{what}): fix its syntax.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsFileError(f"The --config file {path} holds a {type(data).__name__}, not a mapping of "
                                f"settings (key: value, the keys being flag names).")
    return data


def settings_to_argv(settings: dict[str, Any], parser: argparse.ArgumentParser, path: str | os.PathLike,
                     command: str) -> list[str]:
    """The flags that set ``settings`` on ``parser`` (a subcommand's); refuses an unknown key, naming the near ones."""
    actions = setting_actions(parser)
    argv: list[str] = []
    for key, value in settings.items():
        dest = str(key).lstrip("-").replace("-", "_")
        if dest not in actions:
            near = difflib.get_close_matches(dest, list(actions), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SettingsFileError(
                f"The --config file {path} has an unknown key {key!r}{hint}: its keys are the flags of "
                f"'{command}' without the dashes (python -m studentbert {command} --help lists them).")
        action, flag = actions[dest], actions[dest].option_strings[0]
        if value is None:
            continue  # the default
        if isinstance(action, argparse.BooleanOptionalAction | argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise SettingsFileError(f"The --config file {path}: {key} must be true or false, not {value!r}.")
            if value:
                argv.append(flag)
            elif isinstance(action, argparse.BooleanOptionalAction):
                argv.append(action.option_strings[1])
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if action.nargs not in ("+", "*") and len(values) != 1:
            raise SettingsFileError(f"The --config file {path}: {key} takes one value, not the list {value!r}.")
        if not values:
            raise SettingsFileError(f"The --config file {path}: {key} is an empty list; leave it out for the default.")
        argv += [flag, *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    previous = getattr(parser, "settings_file", None)
    parser.settings_file = str(path)  # argparse's errors on these flags name the file, in one line
    try:
        parser.parse_args(argv)
    finally:
        parser.settings_file = previous
    return argv


def dump_settings(settings: dict[str, Any], fmt: str = "yaml") -> str:
    """``settings`` as YAML (``fmt="yaml"``; JSON when PyYAML is missing) or JSON: a file :func:`read_settings_file`
    reads back."""
    plain = json.loads(json.dumps(settings, default=str))
    if fmt == "yaml":
        try:
            import yaml

            return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None).rstrip()
        except ImportError:
            pass
    return json.dumps(plain, indent=2)


# ----------------------------------------------------------------------------------------------------------
# the settings in force: the profile's, with the flags'


TRAIN_OVERRIDES = ("max_steps", "batch_size", "learning_rate", "seed", "save_every", "eval_every", "mixed_precision",
                   "compile", "gradient_accumulation_steps")
"""The flags that override the profile's :class:`~studentbert.optim.TrainConfig`."""


def with_overrides(profile: Profile, section: str, args: argparse.Namespace) -> Profile:
    """The profile whose ``section`` (``"pretrain"``, ``"distill"``, ``"finetune"``) takes the flags' values."""
    changes = {k: getattr(args, k, None) for k in TRAIN_OVERRIDES}
    changes = {k: v for k, v in changes.items() if v is not None}
    return profile.replace(**{section: dataclasses.replace(getattr(profile, section), **changes)})


def profile_for(args: argparse.Namespace, profile: Profile) -> Profile:
    """The profile with the command line's training, student and data settings in place of its own."""
    profile = with_overrides(profile, args.command, args)
    layers = getattr(args, "layers", None)
    student_layers = getattr(args, "student_layers", None)
    if student_layers is None and layers:
        student_layers = len(layers)
    if student_layers is not None:
        profile = profile.replace(student_layers=student_layers)
    data = {k: getattr(args, k, None) for k in ("max_length", "vocab_size", "tokenizer", "heldout_documents")}
    data = {k: v for k, v in data.items() if v is not None}
    if args.corpus:
        from .data.corpora import corpus_label

        data.pop("heldout_documents", None)  # the number held out of --corpus is known once it is read
        data.update(corpus=corpus_label(args.corpus, args.text_column, args.corpus_config, args.split),
                    corpus_config=args.corpus_config, num_documents=0)
    elif args.corpus_config is not None:
        raise ValueError("--corpus-config is the configuration of a --corpus datasets id: pass --corpus too.")
    return profile.replace(data=dataclasses.replace(profile.data, **data))


def settings_in_force(args: argparse.Namespace, profile: Profile) -> dict:
    """Every setting flag's value, the profile's where the flag is None: what ``--print-config`` prints."""
    section = getattr(profile, args.command)
    defaults = {**{k: getattr(section, k) for k in TRAIN_OVERRIDES}, "student_layers": profile.student_layers,
                "max_length": profile.data.max_length, "vocab_size": profile.data.vocab_size,
                "heldout_documents": None if args.corpus and not getattr(args, "streaming", False)
                else profile.data.heldout_documents,  # streamed: the first ones, as many as the profile's
                "tokenizer": profile.data.tokenizer if args.command == "pretrain" else None}
    values = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and k != "command"}
    return {k: defaults.get(k) if v is None else v for k, v in values.items()}
