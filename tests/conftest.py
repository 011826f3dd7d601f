"""Session hooks for the slow, network-bound Colab virtual-environment check (tests/test_colab.py).

It mostly waits on pip, so it runs in the background: it starts when the first test of ``test_colab.py`` starts
(after the books, which then run on a quiet machine and record honest times), overlaps the rest of the suite,
and its test, moved to the end of the session, reads the result.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def _wanted(item) -> bool:
    return not any(m.name == "skipif" and m.args and m.args[0] for m in item.iter_markers())


def pytest_collection_modifyitems(session, config, items):
    from test_colab import VENV_TEST

    venv_tests = [item for item in items if item.name == VENV_TEST and _wanted(item)]
    for item in venv_tests:  # last: by then the background build has had the rest of the suite's time
        items.remove(item)
        items.append(item)
    config._colab_venv_wanted = bool(venv_tests)


def pytest_runtest_setup(item):
    config = item.config
    if (getattr(config, "_colab_venv_wanted", False) and not hasattr(config, "_colab_venv")
            and Path(str(item.fspath)).name == "test_colab.py"):
        from test_colab import build_colab_venv

        config._colab_venv = build_colab_venv(Path(tempfile.mkdtemp(prefix="colab-venv-")))
