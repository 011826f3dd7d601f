"""Session hooks: torch threads that fit the machine's load, and the slow Colab virtual-environment check.

**Load.** Before the first test of each module, :func:`studentbert.speed.busy_cores` measures how many cores
other work keeps busy; when that is at least half a core, the module runs torch on the cores left (in this
process, ``torch.set_num_threads``, and in the processes it starts, ``OMP_NUM_THREADS``), else on torch's
default. Two torch threads on two cores that another job also wants take about 5x their quiet time, one thread
about 2.5x. Every comparison a test makes is between runs of the same module, so they share a thread count.

**Colab** (tests/test_colab.py).

It mostly waits on pip, so it runs in the background: it starts when the first test of ``test_colab.py`` starts
(after the books, which then run on a quiet machine and record honest times), overlaps the rest of the suite,
and its test, moved to the end of the session, reads the result.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def _wanted(item) -> bool:
    return not any(m.name == "skipif" and m.args and m.args[0] for m in item.iter_markers())


def pytest_collection_modifyitems(session, config, items):
    from test_colab import VENV_TEST

    venv_tests = [item for item in items if item.name == VENV_TEST and _wanted(item)]
    for item in venv_tests:  # last: by then the background build has had the rest of the suite's time
        items.remove(item)
        items.append(item)
    config._colab_venv_wanted = bool(venv_tests)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _fit_threads(item)
    config = item.config
    if (getattr(config, "_colab_venv_wanted", False) and not hasattr(config, "_colab_venv")
            and Path(str(item.fspath)).name == "test_colab.py"):
        from test_colab import build_colab_venv

        config._colab_venv = build_colab_venv(Path(tempfile.mkdtemp(prefix="colab-venv-")))



_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_ORIGINAL_ENV = {key: os.environ.get(key) for key in _THREAD_VARIABLES}
_DEFAULT_THREADS: list[int] = []


def _fit_threads(item) -> None:
    """Before a module's first test (and so before its fixtures): torch threads for the machine's load now."""
    module = item.module.__name__ if item.module is not None else None
    if getattr(item.config, "_threads_module", None) == module:
        return
    item.config._threads_module = module
    import torch

    from studentbert.speed import busy_cores, threads_left

    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.append(torch.get_num_threads())
    torch.set_num_threads(_DEFAULT_THREADS[0])
    for key, value in _ORIGINAL_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    busy = busy_cores(0.25)
    if busy >= 0.5:
        threads = threads_left(busy)
        torch.set_num_threads(threads)
        os.environ.update(dict.fromkeys(_THREAD_VARIABLES, str(threads)))
        print(f"\n[{module}: other work keeps {busy:.1f} cores busy; torch runs {threads} thread(s)]")
