"""Draw the SVG diagrams of chapters 2 and 3 into ``book/images/`` (run once after changing them).

* ``encoder_layer.svg``: the post-LayerNorm encoder layer of ``studentbert.encoder.EncoderLayer``;
* ``input_embeddings.svg``: word + position + segment embeddings, then LayerNorm and dropout
  (``studentbert.encoder.Embeddings``);
* ``pretraining_data.svg``: from documents to masked sentence pairs (``studentbert.data.pretraining``).

The files are plain SVG: a white background, dark strokes and text, the reader's own sans-serif font, a
``<title>``; nothing is fetched. Usage: ``python scripts/draw_figures_01_03.py``.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1] / "book" / "images"
INK = "#1a1a1a"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FILLS = {"attn": "#dbe9f6", "ffn": "#fde6c8", "norm": "#d9f0d3", "drop": "#eeeeee", "io": "#ffffff",
         "word": "#dbe9f6", "pos": "#fde6c8", "type": "#e8dcf2", "a": "#dbe9f6", "b": "#fde6c8", "mask": "#f6d5d5"}


class Svg:
    """A tiny SVG writer: boxes, text, arrows; a white background and a title."""

    def __init__(self, width: int, height: int, title: str, desc: str) -> None:
        self.width, self.height = width, height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" font-family="{FONT}">',
            f"<title>{escape(title)}</title>",
            f"<desc>{escape(desc)}</desc>",
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{INK}"/></marker></defs>',
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def text(self, x: float, y: float, s: str, size: int = 14, anchor: str = "middle", weight: str = "normal",
             style: str = "normal", fill: str = INK, mono: bool = False) -> None:
        family = ' font-family="DejaVu Sans Mono, Menlo, Consolas, monospace"' if mono else ""
        self.parts.append(
            f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'font-style="{style}" fill="{fill}" dominant-baseline="middle"{family}>{escape(s)}</text>'
        )

    def box(self, x: float, y: float, w: float, h: float, fill: str = "#ffffff", lines: tuple[str, ...] = (),
            size: int = 14, radius: int = 6, dashed: bool = False, mono_from: int = 99) -> None:
        """A rounded box with centred lines of text (lines from index ``mono_from`` on in a monospace font)."""
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="{radius}" fill="{fill}" '
                          f'stroke="{INK}" stroke-width="1.5"{dash}/>')
        step = size + 4
        top = y + h / 2 - step * (len(lines) - 1) / 2
        for i, line in enumerate(lines):
            small = i >= mono_from
            self.text(x + w / 2, top + i * step, line, size=size - 2 if small else size,
                      weight="bold" if i == 0 and len(lines) > 1 else "normal", mono=small)

    def line(self, points: list[tuple[float, float]], arrow: bool = True, dashed: bool = False) -> None:
        d = " ".join(f"{'M' if i == 0 else 'L'} {x} {y}" for i, (x, y) in enumerate(points))
        end = ' marker-end="url(#arrow)"' if arrow else ""
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.parts.append(f'<path d="{d}" fill="none" stroke="{INK}" stroke-width="1.5"{end}{dash}/>')

    def plus(self, x: float, y: float, r: float = 13) -> None:
        """A circled plus sign (a residual sum), centred at ``(x, y)``."""
        self.parts.append(f'<circle cx="{x}" cy="{y}" r="{r}" fill="#ffffff" stroke="{INK}" stroke-width="1.5"/>')
        self.line([(x - r * 0.6, y), (x + r * 0.6, y)], arrow=False)
        self.line([(x, y - r * 0.6), (x, y + r * 0.6)], arrow=False)

    def write(self, name: str) -> Path:
        path = IMAGES / name
        path.write_text("\n".join([*self.parts, "</svg>"]) + "\n")
        return path


def encoder_layer() -> Path:
    """EncoderLayer.forward: x -> LN(x + Dropout(Attention(x))) -> LN(h + Dropout(FFN(h)))."""
    s = Svg(560, 800, "A post-LayerNorm encoder layer (BERT, DistilBERT)",
            "Input x goes through multi-head self-attention and dropout, is added to x, and the sum is "
            "normalised by a LayerNorm, giving h. Then h goes through the feed-forward network (linear, GELU, "
            "linear) and dropout, is added to h, and the sum is normalised by a second LayerNorm, giving y.")
    cx, w = 230, 300
    x0 = cx - w / 2
    s.text(cx, 30, "EncoderLayer.forward (post-LN)", size=17, weight="bold")
    s.box(x0 + 50, 52, w - 100, 40, FILLS["io"], ("input x   (B, L, H)",))
    # first sub-layer: attention
    s.box(x0, 130, w, 52, FILLS["attn"], ("multi-head self-attention", "self.attention"), mono_from=1)
    s.box(x0, 210, w, 40, FILLS["drop"], ("dropout", "self.dropout"), size=13, mono_from=1)
    s.plus(cx, 290)
    s.box(x0, 330, w, 52, FILLS["norm"], ("LayerNorm", "self.attention_norm"), mono_from=1)
    s.line([(cx, 92), (cx, 130)])
    s.line([(cx, 182), (cx, 210)])
    s.line([(cx, 250), (cx, 277)])
    s.line([(cx, 303), (cx, 330)])
    s.line([(cx, 111), (cx + w / 2 + 50, 111), (cx + w / 2 + 50, 290), (cx + 13, 290)])
    s.text(cx + w / 2 + 58, 200, "residual", size=13, anchor="start", style="italic")
    s.text(cx - w / 2 - 10, 356, "h", size=16, anchor="end", style="italic")
    # second sub-layer: feed-forward
    s.box(x0, 420, w, 104, FILLS["ffn"],
          ("feed-forward network", "ffn_up: Linear H → I", "act: GELU", "ffn_down: Linear I → H"), mono_from=1)
    s.box(x0, 552, w, 40, FILLS["drop"], ("dropout", "self.dropout"), size=13, mono_from=1)
    s.plus(cx, 632)
    s.box(x0, 672, w, 52, FILLS["norm"], ("LayerNorm", "self.ffn_norm"), mono_from=1)
    s.line([(cx, 382), (cx, 420)])
    s.line([(cx, 524), (cx, 552)])
    s.line([(cx, 592), (cx, 619)])
    s.line([(cx, 645), (cx, 672)])
    s.line([(cx, 401), (cx + w / 2 + 50, 401), (cx + w / 2 + 50, 632), (cx + 13, 632)])
    s.text(cx + w / 2 + 58, 520, "residual", size=13, anchor="start", style="italic")
    s.box(x0 + 50, 745, w - 100, 40, FILLS["io"], ("output y   (B, L, H)",))
    s.line([(cx, 724), (cx, 745)])
    return s.write("encoder_layer.svg")


def input_embeddings() -> Path:
    """Embeddings.forward: word + position (+ token type), then LayerNorm and dropout."""
    tokens = ["[CLS]", "the", "dog", "ran", "[SEP]", "it", "sat", "[SEP]"]
    segments = [0, 0, 0, 0, 0, 1, 1, 1]
    col, left = 82, 250
    width = left + col * len(tokens) + 20
    s = Svg(width, 470, "BERT's input embeddings",
            "For each token, the row of the word-embedding table for its id, the row of the position table for "
            "its position and the row of the segment table for its segment (A or B) are added; the sum goes "
            "through a LayerNorm and dropout. DistilBERT has no segment table.")
    s.text(width / 2, 24, "Embeddings.forward: three table rows per token, summed, then LayerNorm and dropout",
           size=15, weight="bold")
    rows = [(110, "word", "self.word (V × H)", lambda i, t: t),
            (190, "pos", "self.position (P × H)", lambda i, t: f"pos {i}"),
            (270, "type", "self.token_type (2 × H)", lambda i, t: "A" if segments[i] == 0 else "B")]
    s.text(20, 62, "token", size=14, anchor="start", weight="bold")
    for y, key, label, _ in rows:
        name = {"word": "word embedding", "pos": "position embedding", "type": "segment embedding"}[key]
        s.text(20, y + 14, name, size=14, anchor="start", weight="bold")
        s.text(20, y + 34, label, size=12, anchor="start", mono=True)
    s.text(20, 324, "(not in DistilBERT)", size=12, anchor="start", style="italic")
    for i, t in enumerate(tokens):
        x = left + i * col
        s.text(x + 35, 62, t, size=14, mono=True)
        s.line([(x + 35, 74), (x + 35, 110)])
        for j, (y, key, _, content) in enumerate(rows):
            s.box(x, y, 70, 44, FILLS[key], (content(i, t),), size=12 if key == "word" else 13)
            if j < len(rows) - 1:
                s.text(x + 35, y + 62, "+", size=20, weight="bold")
        s.line([(x + 35, 314), (x + 35, 346)])
    right = left + col * len(tokens) - 12
    s.box(left, 346, right - left, 40, FILLS["norm"], ("sum → LayerNorm (self.norm) → dropout (self.dropout)",))
    for i in range(len(tokens)):
        x = left + i * col
        s.line([(x + 35, 386), (x + 35, 414)])
        s.text(x + 35, 430, f"e{i}", size=14, style="italic")
    s.text(20, 366, "each token", size=14, anchor="start", weight="bold")
    s.text(20, 430, "output (B, L, H)", size=14, anchor="start", weight="bold")
    return s.write("input_embeddings.svg")


def pretraining_data() -> Path:
    """From documents to masked [CLS] A [SEP] B [SEP] batches."""
    s = Svg(860, 930, "From text to BERT's pretraining examples",
            "Documents are lists of sentences; the sentences are cut into WordPiece tokens; a document's "
            "sentences are packed into chunks, each cut into segments A and B, and half of the time B is "
            "replaced by text from another document (NotNext); each pair is written as [CLS] A [SEP] B [SEP] "
            "with segment ids; at batching time 15% of the tokens are selected and replaced 80/10/10.")
    x, w = 30, 560
    notes_x = x + w + 24
    s.text(430, 26, "From text to pretraining examples", size=18, weight="bold")
    stages = [
        (50, 90, ("documents", "corpus(settings) / load_documents(...)"),
         ["Anna feeds the goats. She is happy. The goats run …  ‖  Tom walks …"], None),
        (170, 90, ("sentences", "split_sentences(text), or one sentence per line"),
         ["[\"Anna feeds the goats.\", \"She is happy.\", \"The goats run …\"]"], None),
        (290, 90, ("WordPiece ids", "tokenize_documents: no special tokens yet"),
         ["anna feeds the goat ##s . | she is happy . | …"], None),
    ]
    for y, h, title, example, _ in stages:
        s.box(x, y, w, h, "#ffffff", ())
        s.text(x + 14, y + 22, title[0], size=15, anchor="start", weight="bold")
        s.text(x + 14, y + 44, title[1], size=12, anchor="start", mono=True)
        for k, e in enumerate(example):
            s.text(x + 14, y + 68 + 18 * k, e, size=12, anchor="start", mono=True)
    s.line([(x + w / 2, 140), (x + w / 2, 170)])
    s.line([(x + w / 2, 260), (x + w / 2, 290)])
    s.line([(x + w / 2, 380), (x + w / 2, 410)])
    s.text(notes_x, 84, "one document per article", size=13, anchor="start", style="italic")
    s.text(notes_x, 104, "(or per generated story)", size=13, anchor="start", style="italic")
    s.text(notes_x, 204, "a document is a list", size=13, anchor="start", style="italic")
    s.text(notes_x, 224, "of sentences, in order", size=13, anchor="start", style="italic")
    s.text(notes_x, 330, "each sentence a list of ids", size=13, anchor="start", style="italic")
    # chunk and A/B
    y = 410
    s.box(x, y, w, 190, "#ffffff", ())
    s.text(x + 14, y + 22, "sentence pairs", size=15, anchor="start", weight="bold")
    s.text(x + 14, y + 44, "build_pretraining_examples", size=12, anchor="start", mono=True)
    s.text(x + 14, y + 68, "pack sentences into a chunk of about T = max_length − 3 tokens,", size=13,
           anchor="start")
    s.text(x + 14, y + 86, "cut it at a random sentence boundary:", size=13, anchor="start")
    s.box(x + 14, y + 100, 170, 34, FILLS["a"], ("A: sentences 1..k",), size=13)
    s.box(x + 190, y + 100, 170, 34, FILLS["b"], ("B: the rest",), size=13)
    s.text(x + 14, y + 154, "coin ½: keep B → IsNext (label 0)", size=13, anchor="start")
    s.text(x + 14, y + 174, "coin ½: B from a random other document → NotNext (label 1)", size=13, anchor="start")
    s.text(notes_x, y + 60, "unused sentences of a NotNext", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 78, "chunk start the next chunk;", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 96, "a pair longer than T loses", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 114, "tokens from its longer segment,", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 132, "at the front or back at random", size=13, anchor="start", style="italic")
    s.line([(x + w / 2, 600), (x + w / 2, 630)])
    # framed example
    y = 630
    s.box(x, y, w, 110, "#ffffff", ())
    s.text(x + 14, y + 22, "one example", size=15, anchor="start", weight="bold")
    s.text(x + 14, y + 44, "input_ids, token_type_ids, next_sentence_label", size=12, anchor="start", mono=True)
    cells = [("[CLS]", "a", 0), ("A …", "a", 0), ("[SEP]", "a", 0), ("B …", "b", 1), ("[SEP]", "b", 1)]
    cx = x + 14
    for text, fill, seg in cells:
        s.box(cx, y + 58, 96, 30, FILLS[fill], (text,), size=13, radius=3)
        s.text(cx + 48, y + 100, f"type {seg}", size=12, mono=True)
        cx += 100
    s.text(notes_x, y + 64, "no masking yet: the dataset", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 82, "stores unmasked pairs", size=13, anchor="start", style="italic")
    s.line([(x + w / 2, 740), (x + w / 2, 770)])
    # masking
    y = 770
    s.box(x, y, w, 140, FILLS["mask"], ())
    s.text(x + 14, y + 22, "masked batch, made afresh for every batch", size=15, anchor="start", weight="bold")
    s.text(x + 14, y + 44, "MLMCollator: pad, then mask_tokens", size=12, anchor="start", mono=True)
    s.text(x + 14, y + 68, "each token except [CLS] [SEP] [PAD] [UNK] [MASK]: selected with p = 0.15", size=13,
           anchor="start")
    s.text(x + 14, y + 88, "a selected token: 80% → [MASK], 10% → a random token, 10% unchanged", size=13,
           anchor="start")
    s.text(x + 14, y + 108, "labels: the original token where selected, −100 elsewhere", size=13, anchor="start")
    s.text(x + 14, y + 128, "→ input_ids, attention_mask, token_type_ids, labels, next_sentence_label", size=12,
           anchor="start", mono=True)
    s.text(notes_x, y + 60, "a coin per token: the number", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 78, "selected in a sequence varies", size=13, anchor="start", style="italic")
    s.text(notes_x, y + 96, "(BERT's script: a fixed count)", size=13, anchor="start", style="italic")
    return s.write("pretraining_data.svg")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for draw in (encoder_layer, input_embeddings, pretraining_data):
        print("wrote", draw().relative_to(IMAGES.parents[1]))


if __name__ == "__main__":
    main()
