"""Stopping a run cleanly on SIGTERM or SIGINT: finish the step, save a checkpoint, exit.

A scheduler's SIGTERM (or a Ctrl-C) sets a flag that the training loop reads at the end of each step; all
processes agree on it (or the others would wait for ever), the loop saves and :meth:`StopSignals.exit` ends the
process (exit status 128 + the signal; a SIGINT raises ``KeyboardInterrupt``). A second signal interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import torch


class StopSignals:
    """SIGTERM/SIGINT caught while :meth:`caught` is active; ``signum`` holds the first one received."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @contextlib.contextmanager
    def caught(self) -> Iterator[None]:
        self.signum = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: object) -> None:
            if self.signum is not None:
                raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping without a checkpoint")
            self.signum = signum

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def agreed(self, accelerator) -> bool:
        """Whether any process received a signal (a collective call under several processes)."""
        flag = self.signum is not None
        if accelerator.num_processes > 1:
            flag = bool(accelerator.reduce(torch.tensor([float(flag)], device=accelerator.device), "sum"))
        return flag

    def exit(self, message: str, announce: bool) -> None:
        """Print ``<SIGNAL> received: <message>`` (when ``announce``) and end: SystemExit, or KeyboardInterrupt."""
        signum = self.signum or signal.SIGTERM
        message = f"{signal.Signals(signum).name} received: {message}"
        if announce:
            print(message, flush=True)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt(message)
        raise SystemExit(128 + signum)
