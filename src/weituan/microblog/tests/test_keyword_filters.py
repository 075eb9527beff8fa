"""Keyword filters (屏蔽关键词): how a keyword matches Chinese and Latin words, which words of a post and
of a repost it reads, expiry and contexts, and that a refused change writes nothing."""

from datetime import timedelta
from typing import Any

import pytest

from weituan.core.errors import NotFound, ValidationFailed
from weituan.microblog.keyword_match import keyword_pattern, post_words
from weituan.microblog.models import FilterKeyword, KeywordFilter
from weituan.microblog.queries.filters import posts_filter_matches, reader_filters
from weituan.microblog.services import filters as services
from weituan.microblog.services.filters import FILTER_KEYWORDS_MAX, KeywordChange
from weituan.microblog.services.posts import post_create, repost_create


def _finds(keyword: str, text: str, *, whole_word: bool = True) -> bool:
    return keyword_pattern(keyword, whole_word=whole_word).search(text) is not None


@pytest.mark.parametrize(
    ("keyword", "text", "whole_word", "found"),
    [
        # Chinese: anywhere in the text, whole word or not (Chinese has no spaces between words).
        ("剧透", "今晚的剧透来了", True, True),
        ("剧透", "今晚的剧透来了", False, True),
        ("拼多多", "去拼多多砍一刀", True, True),
        ("砍一刀", "砍价", True, False),
        # Latin with whole_word: only at word edges, case ignored.
        ("cat", "My CAT sleeps", True, True),
        ("cat", "concatenate", True, False),
        ("cat", "concatenate", False, True),
        ("Cat", "cat.", True, True),
        ("spoiler", "spoilers ahead", True, False),
        ("spoiler", "spoilers ahead", False, True),
        ("iPhone", "新款IPHONE开团", True, True),  # Latin between Chinese characters is a whole word
        ("iPhone", "iPhone15", True, False),  # a digit goes on the word
        ("c++", "I code c++ daily", True, True),  # an end that is no letter needs no edge
        ("618", "618大促", True, True),
        ("618", "2618", True, False),
        ("ÉTÉ", "bel été", True, True),
    ],
)
def test_a_keyword_matches_chinese_anywhere_and_latin_at_word_edges(
    keyword: str, text: str, whole_word: bool, found: bool
) -> None:
    assert _finds(keyword, text, whole_word=whole_word) is found


def test_a_plain_repost_is_read_with_its_original_and_a_quote_by_its_own_words() -> None:
    assert post_words("original", "原文", "", None) == ("原文",)
    assert post_words("repost", "//@shop: 评论", "", "原文") == ("//@shop: 评论", "原文")
    assert post_words("repost", "说两句//@shop: 评论", "说两句", "原文") == ("说两句//@shop: 评论",)


def test_filters_match_posts_reposts_and_quotes_in_their_contexts(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    spoiler = post_create(author=merchant, text="大结局剧透：他是凶手")
    plain = post_create(author=merchant, text="今晚开团 iPhone")
    repost = repost_create(reposter=outsider, post_id=spoiler.id, comment="")
    quote = repost_create(reposter=outsider, post_id=plain.id, comment="别剧透哦")
    comment_free = repost_create(reposter=outsider, post_id=plain.id, comment="")
    services.filter_create(
        owner=shopper, title="剧透", contexts=["home", "thread"], action="hide", keywords=[("剧透", True)]
    )
    services.filter_create(owner=shopper, title="phones", contexts=["public"], keywords=[("IPHONE", True)])
    home = reader_filters(shopper.pk, "home")
    assert [row.filter.title for row in home] == ["剧透"]
    ids = [spoiler.id, plain.id, repost.id, quote.id, comment_free.id]
    found = posts_filter_matches(home, ids)
    assert sorted(found) == sorted([spoiler.id, repost.id, quote.id])
    assert found[repost.id][0].keywords == ("剧透",) and found[repost.id][0].hides
    public = posts_filter_matches(reader_filters(shopper.pk, "public"), ids)
    assert sorted(public) == sorted([plain.id, comment_free.id])
    assert reader_filters(shopper.pk, "notifications") == []
    # Nobody else is filtered by them.
    assert reader_filters(outsider.pk, "home") == []
    assert reader_filters(None, "home") == []


def test_a_filtered_status_matches_it_and_its_plain_reposts(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    post = post_create(author=merchant, text="普通的一条")
    repost = repost_create(reposter=outsider, post_id=post.id, comment="")
    quote = repost_create(reposter=outsider, post_id=post.id, comment="转一下")
    row = services.filter_create(owner=shopper, title="这条不想看", contexts=["home"])
    services.filter_status_add(owner=shopper, filter_id=row.id, post_id=post.id)
    found = posts_filter_matches(reader_filters(shopper.pk, "home"), [post.id, repost.id, quote.id])
    assert sorted(found) == sorted([post.id, repost.id])
    assert found[repost.id][0].post_ids == (post.id,) and found[repost.id][0].keywords == ()
    with pytest.raises(ValidationFailed) as twice:
        services.filter_status_add(owner=shopper, filter_id=row.id, post_id=post.id)
    assert twice.value.code == "filter_status_taken"


def test_an_expired_filter_applies_to_nothing(shopper: Any, merchant: Any, clock: Any) -> None:
    post = post_create(author=merchant, text="双十一剧透")
    services.filter_create(
        owner=shopper, title="一小时", contexts=["home"], expires_in=3600, keywords=[("剧透", True)]
    )
    assert list(posts_filter_matches(reader_filters(shopper.pk, "home"), [post.id])) == [post.id]
    clock.forward(timedelta(hours=1, seconds=1).total_seconds())
    assert reader_filters(shopper.pk, "home") == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"keywords": [("  ", True)]}, "filter_keyword_blank"),
        ({"keywords": [("x" * 101, True)]}, "filter_keyword_length"),
        ({"contexts": ["home", "timeline"]}, "filter_context_unknown"),
        ({"contexts": []}, "filter_context_blank"),
        ({"action": "blur"}, "filter_action_unknown"),
        ({"title": " "}, "filter_title_blank"),
        ({"expires_in": 0}, "filter_expires_in"),
        ({"keywords": [(f"词{n}", True) for n in range(FILTER_KEYWORDS_MAX + 1)]}, "filter_keywords_limit"),
    ],
)
def test_a_bad_filter_is_refused_with_a_code_and_nothing_written(
    shopper: Any, change: dict[str, Any], code: str
) -> None:
    arguments: dict[str, Any] = {
        "title": "屏蔽",
        "contexts": ["home"],
        "keywords": [("剧透", True)],
        **change,
    }
    with pytest.raises(ValidationFailed) as refused:
        services.filter_create(owner=shopper, **arguments)
    assert refused.value.code == code
    assert not KeywordFilter.objects.exists() and not FilterKeyword.objects.exists()


def test_a_refused_change_leaves_the_filter_as_it_was(shopper: Any, outsider: Any) -> None:
    row = services.filter_create(
        owner=shopper,
        title="屏蔽",
        contexts=["home"],
        keywords=[(f"词{n}", True) for n in range(FILTER_KEYWORDS_MAX)],
    )
    first = row.keywords.all()[0]
    with pytest.raises(ValidationFailed) as refused:
        services.filter_update(
            owner=shopper,
            filter_id=row.id,
            title="改名",
            keywords=[
                KeywordChange(id=first.id, destroy=True),
                KeywordChange(keyword="a"),
                KeywordChange(keyword="b"),
            ],
        )
    assert refused.value.code == "filter_keywords_limit"
    row.refresh_from_db()
    assert row.title == "屏蔽" and FilterKeyword.objects.filter(filter=row).count() == FILTER_KEYWORDS_MAX
    # Someone else's filter is not found, for every change.
    with pytest.raises(NotFound):
        services.filter_update(owner=outsider, filter_id=row.id, title="我的了")
    with pytest.raises(NotFound):
        services.filter_delete(owner=outsider, filter_id=row.id)
    with pytest.raises(NotFound):
        services.filter_keyword_delete(owner=outsider, keyword_id=first.id)
    with pytest.raises(NotFound):
        services.filter_keyword_add(owner=outsider, filter_id=row.id, keyword="x", whole_word=False)
    assert KeywordFilter.objects.get().title == "屏蔽"
    # A change that fits: one out, one in, renamed.
    services.filter_update(
        owner=shopper,
        filter_id=row.id,
        title="改名",
        keywords=[KeywordChange(id=first.id, destroy=True), KeywordChange(keyword="新词", whole_word=False)],
    )
    words = {word.keyword: word.whole_word for word in FilterKeyword.objects.filter(filter=row)}
    assert len(words) == FILTER_KEYWORDS_MAX and first.keyword not in words and words["新词"] is False
