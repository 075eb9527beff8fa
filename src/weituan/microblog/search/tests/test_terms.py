"""Cutting text into search terms."""

from weituan.microblog.search.terms import (
    MAX_POSITION,
    QueryPart,
    document_terms,
    document_tsvector,
    fts5_match,
    query_parts,
    tsquery_text,
)


def test_cjk_runs_become_bigrams_then_the_last_character() -> None:
    assert document_terms("今天的团购很划算") == [
        "今天",
        "天的",
        "的团",
        "团购",
        "购很",
        "很划",
        "划算",
        "算",
    ]


def test_latin_is_case_folded_and_full_width_and_accents_are_folded() -> None:
    assert document_terms("Great DEAL！ Café ＡＢＣ iPhone15 snake_case") == [
        "great", "deal", "cafe", "abc", "iphone15", "snake", "case",
    ]  # fmt: skip


def test_mixed_scripts_split_at_the_script_boundary() -> None:
    assert document_terms("买iPhone真香") == ["买", "iphone", "真香", "香"]


def test_query_parts() -> None:
    assert query_parts("团购 Deal 团") == [
        QueryPart(terms=("团购",)),
        QueryPart(terms=("deal",)),
        QueryPart(terms=("团",), prefix=True),
    ]
    assert query_parts("很划算") == [QueryPart(terms=("很划", "划算"))]
    assert query_parts(" ，。!! ") == []


def test_rendered_queries() -> None:
    parts = query_parts("很划算 deal 团")
    assert fts5_match(parts) == '"很划 划算" AND "deal" AND "团"*'
    assert tsquery_text(parts) == "('很划' <-> '划算') & 'deal' & '团':*"


def test_tsvector_positions() -> None:
    assert document_tsvector("deal 团购 deal") == "'deal':1,4 '团购':2 '购':3"


def test_tsvector_positions_past_the_limit_are_held_at_it_once() -> None:
    words = ["deal", "shop", "deal"] * 5_462  # 16,386 terms: the last three past MAX_POSITION
    found = dict(item.split(":", 1) for item in document_tsvector(" ".join(words)).split(" "))
    deal = [str(p) for p in range(1, MAX_POSITION) if p % 3 != 2] + [str(MAX_POSITION)]
    shop = [str(p) for p in range(2, MAX_POSITION, 3)] + [str(MAX_POSITION)]
    assert found == {"'deal'": ",".join(deal), "'shop'": ",".join(shop)}
