"""Turning text into search terms: CJK runs become overlapping bigrams, other words are case-folded.

Neither SQLite's unicode61 tokenizer nor PostgreSQL's 'simple' parser can split Chinese into words,
so the document and the query are both cut here, the same way, and the database only matches whole
terms. A CJK run "团购很划算" is indexed as the bigrams 团购 购很 很划 划算 followed by its last
character 算. A one-character query then matches as a prefix: every character of a run is either
the first character of a bigram or the run's last character, so none is missed.
"""

import re
import unicodedata
from dataclasses import dataclass

# Han (with extensions and compatibility forms), kana and Hangul: scripts written without spaces.
_CJK_CLASS = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\U00020000-\U0003134f"
)
_CJK_RUN_RE = re.compile(f"[{_CJK_CLASS}]+")
_WORD_RE = re.compile(f"[{_CJK_CLASS}]+|[^\\W_{_CJK_CLASS}]+")
_CJK_START_RE = re.compile(f"[{_CJK_CLASS}]")

# Matches PostgreSQL's tsvector position limit; later occurrences are still matched, just not placed.
MAX_POSITION = 16383


def normalise(text: str) -> str:
    """Full-width forms folded to ASCII, accents dropped, case folded: the same on both sides."""
    text = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).casefold()


def _is_cjk(word: str) -> bool:
    return bool(_CJK_START_RE.match(word))


def cjk_run_terms(run: str) -> list[str]:
    """Bigrams of a CJK run in order, then its last character (a lone character is itself)."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]]


def document_terms(text: str) -> list[str]:
    """The terms of a document, in order, ready to be stored space-separated or with positions."""
    terms: list[str] = []
    for word in _WORD_RE.findall(normalise(text)):
        if _is_cjk(word):
            terms.extend(cjk_run_terms(word))
        else:
            terms.append(word)
    return terms


def document_text(text: str) -> str:
    """Terms joined by spaces: what the FTS5 table stores (unicode61 splits it back exactly)."""
    return " ".join(document_terms(text))


def document_tsvector(text: str) -> str:
    """A tsvector literal with positions, so PostgreSQL never re-parses the terms itself."""
    # Positions come in increasing order, so each term's list is sorted as built; only the positions
    # held at MAX_POSITION can repeat.
    positions: dict[str, list[str]] = {}
    for index, term in enumerate(document_terms(text), start=1):
        place = str(min(index, MAX_POSITION))
        places = positions.get(term)
        if places is None:
            positions[term] = [place]
        elif places[-1] != place:
            places.append(place)
    return " ".join(f"'{term}':{','.join(places)}" for term, places in positions.items())


@dataclass(frozen=True)
class QueryPart:
    """One unit of a query: a phrase of consecutive terms, or a single prefix term."""

    terms: tuple[str, ...]
    prefix: bool = False


def query_parts(query: str) -> list[QueryPart]:
    """Every part must match. A CJK run of two or more is a phrase of its bigrams; one character is a
    prefix term; a Latin word or number is a whole term."""
    parts: list[QueryPart] = []
    for word in _WORD_RE.findall(normalise(query)):
        if _is_cjk(word):
            if len(word) == 1:
                parts.append(QueryPart(terms=(word,), prefix=True))
            else:
                parts.append(QueryPart(terms=tuple(word[i : i + 2] for i in range(len(word) - 1))))
        else:
            parts.append(QueryPart(terms=(word,)))
    return parts


def fts5_match(parts: list[QueryPart]) -> str:
    """An FTS5 MATCH expression. Terms hold only letters and digits, so quoting them is enough."""
    rendered = []
    for part in parts:
        phrase = '"' + " ".join(part.terms) + '"'
        rendered.append(phrase + "*" if part.prefix else phrase)
    return " AND ".join(rendered)


def tsquery_text(parts: list[QueryPart]) -> str:
    """A tsquery literal: phrases with <->, prefixes with :*, parts joined by &."""
    rendered = []
    for part in parts:
        quoted = [f"'{term}'" for term in part.terms]
        if part.prefix:
            rendered.append(quoted[0] + ":*")
        elif len(quoted) == 1:
            rendered.append(quoted[0])
        else:
            rendered.append("(" + " <-> ".join(quoted) + ")")
    return " & ".join(rendered)


def contains_cjk(text: str) -> bool:
    return bool(_CJK_RUN_RE.search(text))
