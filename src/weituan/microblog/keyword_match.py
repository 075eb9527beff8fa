"""Matching filter keywords against a post's words: Chinese anywhere in the text, a Latin whole word only
at word edges, letter case ignored."""

import re
from collections.abc import Sequence

# The scripts written without spaces between words (CJK ideographs and punctuation, kana, hangul,
# full-width forms): inside them a "word edge" means nothing, so a keyword made of them matches anywhere.
_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3200-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff"
)
# A letter or digit of a script written with spaces: a word character that is not CJK.
_SPACED = re.compile(rf"[^\W{_CJK}]")
_SPACED_CLASS = rf"[^\W{_CJK}]"


def keyword_pattern(keyword: str, *, whole_word: bool) -> "re.Pattern[str]":
    """The compiled pattern of one keyword. With `whole_word`, an end of the keyword that is a Latin
    (or other spaced script's) letter or digit must meet a word edge there: "cat" finds "a cat!" but not
    "concat"; an end that is Chinese, or punctuation, needs no edge."""
    text = keyword.strip()
    pattern = re.escape(text)
    if whole_word and text:
        if _SPACED.match(text[0]):
            pattern = rf"(?<!{_SPACED_CLASS})" + pattern
        if _SPACED.match(text[-1]):
            pattern += rf"(?!{_SPACED_CLASS})"
    return re.compile(pattern, re.IGNORECASE)


def post_words(kind: str, text: str, comment: str, origin_text: str | None) -> tuple[str, ...]:
    """The words a filter reads of a post: its text (for a repost, Weibo's chain `comment//@name: ...`,
    its own comment first), and for a plain repost, which says nothing of its own, the original's."""
    if kind == "repost" and not comment and origin_text is not None:
        return (text, origin_text)
    return (text,)


def keywords_found(patterns: Sequence[tuple[str, "re.Pattern[str]"]], words: Sequence[str]) -> list[str]:
    """The keywords (of `(keyword, pattern)` pairs) that occur in any of `words`, in the given order."""
    return [keyword for keyword, pattern in patterns if any(pattern.search(text) for text in words)]
