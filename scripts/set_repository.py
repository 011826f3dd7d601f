"""Point the book at another repository address: edit ``repository.url`` in ``_config.yml``, then run this.

    python scripts/set_repository.py            # rewrite every copy of the address from _config.yml

The address appears where a reader meets it without the repository at hand: the Colab badge and the
install cell of every chapter (a notebook opened in Colab has no ``_config.yml``), and
``studentbert.report.REPOSITORY`` (the clone that chapters reading ``benchmarks/results`` make on Colab).
``_config.yml`` is the one place to edit; ``tests/test_colab.py`` fails while any copy differs from it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "src" / "studentbert" / "report.py"
GITHUB = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+?(?=[/\"')\s]|\.git|$)")


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def owner_and_name(url: str) -> str:
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)
    if not match:
        raise SystemExit(f"repository.url must be https://github.com/OWNER/NAME (Colab opens GitHub notebooks), got {url}")
    return match.group(1)


def rewrite(text: str, url: str) -> str:
    text = re.sub(r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/",
                  f"colab.research.google.com/github/{owner_and_name(url)}/blob/", text)
    return re.sub(r"(studentbert(?:\[[\w,]+\])? @ git\+)https://github\.com/[\w.-]+/[\w.-]+", rf"\g<1>{url}", text)


def main() -> int:
    url = repository_url()
    changed = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        old = path.read_text()
        new = rewrite(old, url)
        if new != old:
            path.write_text(new)
            changed.append(path.name)
    old = REPORT.read_text()
    new = re.sub(r'^REPOSITORY = ".*"$', f'REPOSITORY = "{url}"', old, flags=re.M)
    if new != old:
        REPORT.write_text(new)
        changed.append("src/studentbert/report.py")
    print(f"repository {url}: rewrote {changed or 'nothing (already current)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
