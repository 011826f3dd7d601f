"""The book, end to end, as CI and readers run it.

* every chapter is committed clean (no outputs), with a ``parameters`` cell, a Colab badge and set-up cells;
* ``scripts/run_book.py --profile tiny --build`` executes every chapter once, in book order, offline, sharing
  one artifact cache (a chapter reuses the tokenizer and teacher an earlier one produced), records the time of
  each chapter and the numbers it measured, and builds the website from the executed notebooks;
* the built site opens in headless Chromium: every chapter page has its title, at least one figure (opaque, so
  that it reads on the dark theme too) and no error output;
* the site works offline: no page loads a script or stylesheet from another host, and with no network every
  equation is typeset by the MathJax vendored in ``book/_static/mathjax`` (no raw ``\\(``/``\\[`` left);
* the diagrams: at least five SVG files shown by the chapters, each well-formed SVG with a ``<title>``, drawn
  by Chromium (loads, not blank, opaque background);
* ``--profile full --smoke`` executes every cell of every chapter with the full profile's shapes (BERT-base
  teacher, 6-layer student, the bert-base-uncased vocabulary, 128 tokens, SST-2's schema) and a handful of
  steps, offline, on local stand-ins of the hub's models and datasets (about 8 minutes on 2 cores).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
RUN_BOOK = ROOT / "scripts" / "run_book.py"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _title(path: Path) -> str:
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    return re.search(r"^# (.+)$", first, re.M).group(1).strip()


def _run_book(*args: str, out: Path, home: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(RUN_BOOK), *args, "--output-dir", str(out), "--home", str(home)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    results_file = out / "results.json"
    assert results_file.exists(), f"run_book.py wrote no results file:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    results = json.loads(results_file.read_text())
    results["_returncode"], results["_log"] = proc.returncode, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> dict:
    """The whole tiny book, executed once and built into a website (about 10 minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("run-tiny")
    results = _run_book("--profile", "tiny", "--build", out=out, home=tmp_path_factory.mktemp("studentbert_home"))
    results["_out"] = out
    return results


def test_notebooks_are_committed_clean_and_parametrised():
    assert NOTEBOOKS, "no chapters found in book/"
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"book/{path.stem}" in toc, f"{path.name} is not in _toc.yml"
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") for c in code), f"{path.name} is committed with outputs"
        params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1 and 'profile = "tiny"' in "".join(params[0]["source"]), (
            f"{path.name} needs one cell tagged 'parameters' that sets profile = \"tiny\""
        )
        assert "smoke = False" in "".join(params[0]["source"]) and "overrides = {}" in "".join(params[0]["source"]), (
            f"{path.name}: the parameters cell also sets smoke = False and overrides = {{}} (run_book.py --smoke)"
        )
        assert any("setup" in c.get("metadata", {}).get("tags", []) for c in code), (
            f"{path.name}: tag the imports cell 'setup' (run_book.py --dry-run executes it)"
        )
        first = "".join(nb["cells"][0]["source"])
        assert f"colab.research.google.com/github/studentbert/studentbert/blob/main/book/{path.name}" in first, (
            f"{path.name}: the first cell must carry the Colab badge for this notebook"
        )
        colab = "".join(code[1]["source"])
        pip_args = re.findall(r'"([^"]+)"', colab)
        assert '"google.colab" in sys.modules' in colab and any(a.startswith("studentbert[") for a in pip_args) \
            and not any(a.startswith("torch") for a in pip_args), (
            f"{path.name}: the second code cell installs the package on Colab, without pinning torch"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_runs_with_tiny_profile(path: Path, tiny_book: dict):
    records = {c["chapter"]: c for c in tiny_book["chapters"]}
    assert path.stem in records, f"run_book.py did not run {path.name}:\n{tiny_book['_log']}"
    record = records[path.stem]
    assert record["status"] == "ok", f"{path.name}: {record.get('error')}"
    executed = json.loads((tiny_book["_out"] / "notebooks" / path.name).read_text())
    assert executed["metadata"]["papermill"]["parameters"] == {"profile": "tiny"}
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), "a cell did not run"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_results_file_records_times_and_measurements(tiny_book: dict):
    assert tiny_book["_returncode"] == 0, tiny_book["_log"]
    assert tiny_book["profile"] == "tiny" and not tiny_book["failed"]
    assert [c["chapter"] for c in tiny_book["chapters"]] == [p.stem for p in NOTEBOOKS]
    for c in tiny_book["chapters"]:
        assert c["seconds"] > 0 and c["budget_s"] > 0 and isinstance(c["within_budget"], bool)
    assert tiny_book["total_seconds"] == pytest.approx(sum(c["seconds"] for c in tiny_book["chapters"]), abs=0.5)
    assert tiny_book["total_goal_s"] == 600 and isinstance(tiny_book["within_total_goal"], bool)  # recorded, not timed
    recorded = {c["chapter"]: c.get("recorded", {}) for c in tiny_book["chapters"]}
    assert recorded["04_pretraining"]["pretraining"]["heldout_nsp_accuracy"] > 0.5
    assert recorded["07_finetuning"]["comparison"]["teacher_accuracy"] > 0.5



CHECK_NUMBERS = ROOT / "scripts" / "check_numbers.py"


def _check_numbers(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK_NUMBERS), "--strict", *map(str, paths)], capture_output=True,
                          text=True)


def test_every_number_in_the_prose_comes_from_an_output(tiny_book: dict):
    """The book's rule on numbers (CONVENTIONS.md): each number of the prose is printed by the chapter, cited,
    or a definition; checked on the executed tiny book."""
    proc = _check_numbers(tiny_book["_out"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"0 finding(s) in {len(NOTEBOOKS)} notebook(s)" in proc.stdout


def test_number_check_finds_a_number_no_output_printed(tmp_path: Path):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("steps = 600\nprint(f'accuracy {0.9312:.4f}')")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.9312\n")]
    nb.cells = [code, nbformat.v4.new_markdown_cell("After 600 steps the accuracy is 0.93, and 93% is kept.")]
    good = tmp_path / "01_good.ipynb"
    nbformat.write(nb, good)
    assert _check_numbers(good).returncode == 0
    nb.cells[1] = nbformat.v4.new_markdown_cell("After 600 steps the accuracy is 0.95. The paper keeps 97.1% {cite}`x`.")
    bad = tmp_path / "02_bad.ipynb"
    nbformat.write(nb, bad)
    proc = _check_numbers(bad)
    assert proc.returncode == 1 and "02_bad.ipynb, cell 1: 0.95" in proc.stdout, proc.stdout
    assert "1 finding(s)" in proc.stdout  # 600 is a setting of the code, 97.1% is cited

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _require_chromium() -> str:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("STUDENTBERT_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed: apt-get install -y chromium (as .ci/run does)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium); CI installs it")
    return chromium


# No host name resolves: the pages are rendered as a reader without a network sees them.
OFFLINE_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND"]
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)  # http://, https://, //host (protocol-relative)
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RAW_TEX = re.compile(r"\\[()\[\]]")  # \( \) \[ \]: Sphinx's math delimiters, left visible where MathJax did not run
SVG_NS = "{http://www.w3.org/2000/svg}"


def _dump_dom(chromium: str, url: str, profile: Path, budget_ms: int = 5000, flags: tuple[str, ...] = ()) -> str:
    """The DOM of ``url`` after ``budget_ms`` of virtual time in headless Chromium, offline."""
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, *OFFLINE_FLAGS, *flags, f"--user-data-dir={profile}",
                           f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "</html>" in proc.stdout, f"Chromium could not render {url}: {proc.stderr[-2000:]}"
    return proc.stdout


class _MathAudit(HTMLParser):
    """A page's visible text and its math elements.

    ``text``: the text nodes of the body outside ``<script>``, ``<style>``, ``<pre>``, ``<code>`` and
    ``<textarea>`` (code may legitimately contain ``\\[``). ``math``: one record per element Sphinx writes for an
    equation (``<span class="math ...">`` inline, ``<div class="math ...">`` display) with its text, whether
    MathJax replaced it by an ``<mjx-container>`` and whether that holds a TeX error (``<mjx-merror>``, or an
    undefined macro, which MathJax shows as red text: ``<mtext mathcolor="red">\\name</mtext>``).
    """

    SKIP = {"head", "script", "style", "pre", "code", "textarea"}

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, dict | None]] = []
        self.text: list[str] = []
        self.math: list[dict] = []
        self.red_text = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        records = [record for _, record in self.open if record is not None]
        for record in records:
            record["typeset"] |= tag == "mjx-container"
            record["error"] |= tag == "mjx-merror" or any(name == "data-mjx-error" for name, _ in attrs)
        self.red_text = tag == "mtext" and dict(attrs).get("mathcolor") == "red"
        if tag in VOID_TAGS:
            return
        record = None
        if tag in ("span", "div") and "math" in (dict(attrs).get("class") or "").split():
            record = {"tag": tag, "text": "", "typeset": False, "error": False}
            self.math.append(record)
        self.open.append((tag, record))

    def handle_endtag(self, tag: str) -> None:
        self.red_text = False
        if any(name == tag for name, _ in self.open):
            while self.open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if any(name in self.SKIP for name, _ in self.open):
            return
        self.text.append(data)
        for _, record in self.open:
            if record is not None:
                record["text"] += data
                record["error"] |= self.red_text and data.startswith("\\")


def _math_problems(dom: str) -> tuple[int, list[str]]:
    """How many equations a rendered page has, and what is wrong with their typesetting (empty: nothing)."""
    audit = _MathAudit(dom)
    problems = [f"not typeset: {r['text'].strip()[:80]!r}" for r in audit.math if not r["typeset"]]
    problems += [f"TeX error in: {r['text'].strip()[:80]!r}" for r in audit.math if r["error"]]
    for chunk in audit.text:
        problems += [f"raw TeX in the text: {chunk[max(0, m.start() - 40):m.end() + 40].strip()!r}"
                     for m in RAW_TEX.finditer(chunk)]
    return len(audit.math), problems


def _remote_resources(page: str) -> list[str]:
    """The scripts and stylesheets (any ``<link href>``) a page would fetch from another host."""
    tags = re.findall(r"<(?:script|link)\b[^>]*>", page, re.I)
    urls = [m.group(2) for t in tags for m in re.finditer(r"""\b(src|href)\s*=\s*["']([^"']+)""", t)]
    return [url for url in urls if REMOTE.match(url)]


def _local_svgs(page: str) -> list[str]:
    """The ``src`` of each ``<img>`` that shows an SVG file of the site (remote badges are not diagrams)."""
    sources = re.findall(r"""<img\b[^>]*\bsrc\s*=\s*["']([^"']+)""", page, re.I)
    return [src for src in sources if src.split("?")[0].endswith(".svg") and not REMOTE.match(src)]


def _svg_file_problems(path: Path) -> list[str]:
    """What is wrong with an SVG diagram file: missing, not well-formed, not SVG, no ``<title>``, no size, remote."""
    if not path.is_file():
        return [f"{path} does not exist"]
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        return [f"{path.name} is not well-formed XML: {error}"]
    problems = [] if root.tag == f"{SVG_NS}svg" else [f"{path.name}: the root element is {root.tag}, not <svg>"]
    title = root.find(f"{SVG_NS}title")
    if title is None or not "".join(title.itertext()).strip():
        problems.append(f"{path.name} has no <title> under <svg> (the diagram's accessible name)")
    if root.get("viewBox") is None and not (root.get("width") and root.get("height")):
        problems.append(f"{path.name} has neither a viewBox nor a width and height")
    if re.search(r"""(?:href|src)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", path.read_text()):
        problems.append(f"{path.name} loads something from the network")
    return problems


_SVG_HARNESS = """<!doctype html><html><body><pre id="result">pending</pre><script>
const sources = %s, result = {};
function report(name, value) {
  result[name] = value;
  if (Object.keys(result).length === Object.keys(sources).length)
    document.getElementById("result").textContent = JSON.stringify(result);
}
for (const [name, uri] of Object.entries(sources)) {
  const img = new Image();
  img.onerror = () => report(name, {loaded: false});
  img.onload = () => {
    const width = 480, ratio = img.naturalWidth && img.naturalHeight ? img.naturalHeight / img.naturalWidth : 0.6;
    const canvas = Object.assign(document.createElement("canvas"), {width, height: Math.max(1, Math.round(width * ratio))});
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    try {
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let opaque = 0, ink = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        opaque += pixels[i + 3] === 255;
        ink += pixels[i + 3] > 128 && 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2] < 160;
      }
      const n = pixels.length / 4;
      report(name, {loaded: true, width: img.naturalWidth, height: img.naturalHeight, opaque: opaque / n, ink: ink / n});
    } catch (error) { report(name, {loaded: true, error: String(error)}); }
  };
  img.src = uri;
}
</script></body></html>
"""


def _svg_render_problems(chromium: str, files: list[Path], tmp_path: Path) -> list[str]:
    """Load each SVG file, where it is, in headless Chromium (as an ``<img>``, drawn onto a canvas) and report
    any that fails to load (missing, malformed), draws nothing dark (blank: no strokes, no text) or is not
    opaque (a transparent background does not read on the dark theme)."""
    sources = {path.name: path.absolute().as_uri() for path in files}
    harness = tmp_path / "svg_harness.html"
    harness.write_text(_SVG_HARNESS % json.dumps(sources))
    # file:// pages may read file:// images back from a canvas only with this flag (else the canvas is tainted)
    dom = _dump_dom(chromium, harness.as_uri(), tmp_path / "profile-svg", flags=("--allow-file-access-from-files",))
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", f"the SVG check page did not finish: {dom[-2000:]}"
    problems = []
    for name, r in json.loads(html.unescape(found.group(1))).items():
        if not r["loaded"] or "error" in r:
            problems.append(f"{name} does not render in Chromium {r.get('error', '')}".strip())
        elif r["ink"] < 0.002:
            problems.append(f"{name} renders blank ({r['ink']:.4f} of its pixels are dark)")
        elif r["opaque"] < 0.98:
            problems.append(f"{name} has a transparent background ({r['opaque']:.3f} of its pixels are opaque)")
    return problems


def test_site_renders_in_chromium(tiny_book: dict, tmp_path: Path):
    chromium = _require_chromium()
    site = Path(tiny_book["site"])
    assert (site / "index.html").exists()
    from matplotlib.image import imread

    for path in NOTEBOOKS:
        page = site / "book" / f"{path.stem}.html"
        assert page.exists(), f"the site has no page for {path.name}"
        dom = _dump_dom(chromium, page.as_uri(), tmp_path / "profile")
        title = _title(path)
        h1 = [html.unescape(re.sub(r"<[^>]+>", "", h)).replace("#", "").strip()
              for h in re.findall(r"<h1[^>]*>(.*?)</h1>", dom, re.S)]
        assert title in h1, f"{page.name}: heading {title!r} not rendered (h1: {h1})"
        assert "output traceback" not in dom and "Traceback (most recent call last)" not in dom, (
            f"{page.name} shows an error"
        )
        images = [src for src in re.findall(r'<img[^>]+src="([^"]+\.png)"', dom) if "_images/" in src]
        assert images, f"{page.name} has no figure"
        for src in images:
            pixels = imread(page.parent / src)
            if pixels.ndim == 3 and pixels.shape[2] == 4:
                assert pixels[..., 3].min() == 1.0, f"{src} on {page.name} has a transparent background"
        # the equations, typeset by the site's own MathJax with no network
        written = len(_MathAudit(page.read_text()).math)
        rendered, problems = _math_problems(dom)
        assert not problems and rendered == written, f"{page.name}: math not typeset offline: {problems[:5]}"
        if path.stem.startswith("05_"):
            assert any(r["tag"] == "div" for r in _MathAudit(dom).math), f"{page.name} has no display math"
    for page in sorted((site / "book").glob("*.html")):  # the pages that are not chapters (introduction, references)
        written = len(_MathAudit(page.read_text()).math)
        if written and page.stem not in {p.stem for p in NOTEBOOKS}:
            rendered, problems = _math_problems(_dump_dom(chromium, page.as_uri(), tmp_path / "profile"))
            assert not problems and rendered == written, f"{page.name}: math not typeset offline: {problems[:5]}"


def test_site_loads_nothing_from_the_network(tiny_book: dict):
    """Every page's scripts and stylesheets, and the fonts and imports of those stylesheets, are in the site."""
    site = Path(tiny_book["site"])
    pages = sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)  # not templates
    assert len(pages) > len(NOTEBOOKS)
    for page in pages:
        text = page.read_text()
        assert not _remote_resources(text), f"{page.relative_to(site)} loads {_remote_resources(text)}"
        for url in re.findall(r"""<script\b[^>]*\bsrc\s*=\s*["']([^"'?#]+)""", text):
            assert (page.parent / url).is_file(), f"{page.relative_to(site)} loads {url}, which the site lacks"
    for sheet in site.rglob("*.css"):
        found = re.findall(r"""url\(\s*["']?((?:https?:)?//[^"')]+)|@import\s+(?:url\()?\s*["']((?:https?:)?//[^"']+)""",
                           sheet.read_text(errors="replace"))
        assert not found, f"{sheet.relative_to(site)} loads {found[:3]}"


def test_site_diagrams_are_svg_files_that_render(tiny_book: dict, tmp_path: Path):
    """The chapters' diagrams: at least five distinct SVG files, each in the site, well-formed SVG with a
    <title>, and drawn by Chromium (loads, not blank, opaque)."""
    chromium = _require_chromium()
    site = Path(tiny_book["site"])
    files: dict[Path, str] = {}
    for path in NOTEBOOKS:
        page = site / "book" / f"{path.stem}.html"
        for src in _local_svgs(page.read_text()):
            files.setdefault((page.parent / src.split("?")[0]).resolve(), page.name)
    assert len(files) >= 5, f"the chapters show {len(files)} SVG diagrams, fewer than five: {sorted(files)}"
    problems = [f"{files[f]}: {p}" for f in files for p in _svg_file_problems(f)]
    assert not problems, problems
    assert not _svg_render_problems(chromium, sorted(files), tmp_path)


def test_site_checks_catch_raw_math_and_broken_diagrams(tmp_path: Path):
    """The checks above, on small pages: raw TeX and a TeX error are caught, typeset math with the vendored
    MathJax passes offline; a missing, malformed, title-less or blank SVG is caught, a good one passes."""
    assert _remote_resources('<script src="https://cdn.jsdelivr.net/x.js"></script><link href="//f.org/a.css">') == [
        "https://cdn.jsdelivr.net/x.js", "//f.org/a.css"]
    assert not _remote_resources('<script src="_static/x.js"></script><a href="https://github.com">repo</a>')
    assert _local_svgs('<img src="https://x.org/badge.svg"><img alt="a" src="../_images/a.svg">') == ["../_images/a.svg"]
    chromium = _require_chromium()
    mathjax = BOOK / "_static" / "mathjax" / "tex-chtml-full.js"
    body = r"""<p>Inline <span class="math notranslate nohighlight">\(T^2\)</span> and code <code>x[\[</code>.</p>
<div class="math notranslate nohighlight">\[p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}\]</div>"""

    def page(script: str, body: str) -> str:  # the head Sphinx writes: MathJax's options, then its script
        return (f'<html><head><script>window.MathJax = {{"options": {{"processHtmlClass": "math"}}}}</script>'
                f'{script}</head><body>{body}</body></html>')

    raw = tmp_path / "raw.html"
    raw.write_text(page("", body))
    written = len(_MathAudit(raw.read_text()).math)
    assert written == 2
    count, problems = _math_problems(_dump_dom(chromium, raw.as_uri(), tmp_path / "p"))
    assert count == 2 and len([p for p in problems if p.startswith("not typeset")]) == 2
    assert len([p for p in problems if p.startswith("raw TeX")]) == 4, problems  # \( \) \[ \], not the code's \[
    typeset = tmp_path / "typeset.html"
    typeset.write_text(page(f'<script defer src="{mathjax.as_uri()}"></script>', body))
    assert _math_problems(_dump_dom(chromium, typeset.as_uri(), tmp_path / "p")) == (2, [])
    wrong = tmp_path / "wrong.html"
    wrong.write_text(page(f'<script defer src="{mathjax.as_uri()}"></script>',
                          r'<span class="math">\(\frac{1}{2}}\)</span> <span class="math">\(\nosuchmacro x\)</span>'))
    count, problems = _math_problems(_dump_dom(chromium, wrong.as_uri(), tmp_path / "p"))
    assert count == 2 and len(problems) == 2 and all(p.startswith("TeX error") for p in problems), problems

    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 100" width="200" height="100">{title}'
           '<rect width="200" height="100" fill="#ffffff"/>{ink}</svg>')
    ink = '<rect x="20" y="20" width="160" height="60" fill="none" stroke="#222" stroke-width="4"/>' \
          '<text x="100" y="58" text-anchor="middle" font-size="20" fill="#222">layer</text>'
    cases = {"good.svg": svg.format(title="<title>A layer</title>", ink=ink),
             "untitled.svg": svg.format(title="", ink=ink),
             "broken.svg": svg.format(title="<title>A layer</title>", ink=ink).replace("</svg>", "<g></svg>"),
             "blank.svg": svg.format(title="<title>Nothing</title>", ink=""),
             "clear.svg": svg.format(title="<title>A layer</title>", ink=ink).replace('fill="#ffffff"', 'fill="none"')}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    assert _svg_file_problems(tmp_path / "good.svg") == []
    assert _svg_file_problems(tmp_path / "missing.svg") and _svg_file_problems(tmp_path / "broken.svg")
    assert any("<title>" in p for p in _svg_file_problems(tmp_path / "untitled.svg"))
    rendered = _svg_render_problems(chromium, [tmp_path / n for n in [*cases, "missing.svg"]], tmp_path)
    assert sorted(p.split()[0] for p in rendered) == ["blank.svg", "broken.svg", "clear.svg", "missing.svg"], rendered


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> dict:
    """Every chapter with profile="full" and smoke=True, on local stand-ins (about 8 minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("run-smoke")
    results = _run_book("--profile", "full", "--smoke", out=out, home=tmp_path_factory.mktemp("smoke_home"))
    results["_out"] = out
    return results


def test_full_profile_at_smoke_scale_runs_every_cell_of_every_chapter(smoke_book: dict):
    assert smoke_book["_returncode"] == 0, smoke_book["_log"]
    assert smoke_book["profile"] == "full" and smoke_book["smoke"] is True and not smoke_book["failed"]
    assert [c["chapter"] for c in smoke_book["chapters"]] == [p.stem for p in NOTEBOOKS]
    assert smoke_book["total_seconds"] > 0  # recorded, not judged
    models = smoke_book["models"]  # the full shapes: BERT-base with its heads, the 6-layer student with its MLM head
    assert models["teacher_layers"] == 12 and models["student_layers"] == 6 and models["hidden_size"] == 768
    assert models["vocab_size"] == 30522 and models["max_length"] == 128
    assert 109e6 < models["teacher_parameters"] < 111e6 and 66e6 < models["student_parameters"] < 68e6
    standins = smoke_book["overrides"]
    assert Path(standins["teacher_checkpoint"]).name == "bert-base-uncased" and Path(standins["task.name"]).name == "sst2"
    for path in NOTEBOOKS:
        executed = json.loads((smoke_book["_out"] / "notebooks" / path.name).read_text())
        assert executed["metadata"]["papermill"]["parameters"]["profile"] == "full"
        assert executed["metadata"]["papermill"]["parameters"]["smoke"] is True
        code = [c for c in executed["cells"] if c["cell_type"] == "code"]
        assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), f"{path.name}: a cell did not run"
        assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
