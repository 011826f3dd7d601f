"""Session hooks: start the slow, network-bound Colab virtual-environment check in the background as soon as
it is collected, so that it overlaps with the rest of the suite (see tests/test_colab.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path


def pytest_collection_modifyitems(session, config, items):
    from test_colab import VENV_TEST, build_colab_venv

    for item in items:
        if item.name == VENV_TEST and not any(m.name == "skipif" and m.args and m.args[0] for m in item.iter_markers()):
            config._colab_venv = build_colab_venv(Path(tempfile.mkdtemp(prefix="colab-venv-")))
            break
