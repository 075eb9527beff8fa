"""Weighted text length, as Weibo and Twitter count it: CJK and full-width count 2, a URL counts 23."""

import re
import unicodedata

URL_WEIGHT = 23
URL_RE = re.compile(r"https?://[^\s<>\"'，。！？、；：（）【】《》]+", re.IGNORECASE)


def char_weight(ch: str) -> int:
    """2 for wide (CJK, full-width, most emoji) characters, 1 for everything else, 0 for joiners."""
    if ch in ("\u200d", "\ufe0f"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def weighted_length(text: str) -> int:
    """The length a post counts against the limit. Every URL counts 23, however long it is."""
    total = 0
    position = 0
    for match in URL_RE.finditer(text):
        total += sum(char_weight(ch) for ch in text[position : match.start()])
        total += URL_WEIGHT
        position = match.end()
    total += sum(char_weight(ch) for ch in text[position:])
    return total
