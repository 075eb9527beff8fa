"""Post text: finding @mentions, #话题# / #tag topics and links, and rendering it to safe HTML.

Rendering never trusts the text: every piece is escaped first, and only the links we build ourselves
(http/https URLs, mentions, topics) become markup. Nothing in a post can add a tag or an attribute.
"""

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from django.utils.html import escape

from weituan.core.text import URL_RE, weighted_length

__all__ = [
    "CHAIN_HOP_DELETED",
    "PLAIN_REPOST_TEXT",
    "Token",
    "chain_text",
    "extract_mentions",
    "extract_topics",
    "extract_urls",
    "link_display",
    "render_html",
    "render_inline_html",
    "tokenize",
    "topic_display",
    "topic_key",
    "weighted_length",
]

USERNAME_CHARS = r"A-Za-z0-9_\u4e00-\u9fff"
# A Weibo topic sits between two #s. It neither starts nor ends with a space ("#a #b" is two Twitter
# tags), and it holds spaces only when it holds Chinese too, so "#1 C#" is not a topic but "#双十一 团购#" is.
_WEIBO_TOPIC = r"#(?P<weibo>(?![\s#])(?:[^#\s]{1,64}|(?=[^#\n]*[\u4e00-\u9fff])[^#\n]{1,64}?(?<!\s)))#"
# An @name preceded by a letter or digit is an e-mail address, not a mention; CJK text may touch it.
_MENTION = rf"(?<![A-Za-z0-9_.@])@(?P<mention>[{USERNAME_CHARS}]{{2,30}})(?![{USERNAME_CHARS}])"
# A Twitter tag runs until whitespace or punctuation and is not glued to a word ("C#", "&#60;").
_TAG = r"(?<![\w&/#])#(?P<tag>\w{1,64})"
_INLINE_RE = re.compile(f"{_WEIBO_TOPIC}|{_MENTION}|{_TAG}")
# Closing punctuation right after a link is more likely the sentence's than the link's.
_URL_TRAILING = ".,;:!?'\")]}"
CHAIN_MARK = "//@"  # where a repost's chain goes on to the hop above: `comment//@name: their comment`
PLAIN_REPOST_TEXT = "转发微博"  # what Weibo shows for a forward of an original without a comment
# What a hop of the chain reads as once its repost is deleted, in Weibo's words for a deleted post.
CHAIN_HOP_DELETED = "此微博已被作者删除"
LINK_DISPLAY_LENGTH = 30  # characters of a link's host and path shown before it is cut with "…"

TokenKind = Literal["text", "url", "mention", "topic"]


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of post text: `raw` as written; `value` the URL, the username or the topic's display name."""

    kind: TokenKind
    raw: str
    value: str


def topic_display(name: str) -> str:
    """A topic name as shown: outer spaces removed and inner runs of spaces made one."""
    return " ".join(name.split())


def topic_key(name: str) -> str:
    """The key a topic is stored under: display form, case-folded, so #Deal# and #deal are one topic."""
    return topic_display(name).casefold()


def chain_text(comment: str, chain: Sequence[Mapping[str, Any]]) -> str:
    """The text a repost shows: its comment followed by `//@name: comment` for each hop above it (a
    hop marked `deleted` reads CHAIN_HOP_DELETED)."""
    if not chain:
        return comment or PLAIN_REPOST_TEXT
    return comment + "".join(
        f"//@{hop['username']}: {CHAIN_HOP_DELETED if hop.get('deleted') else hop['comment']}"
        for hop in chain
    )


def _inline_tokens(segment: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    for match in _INLINE_RE.finditer(segment):
        if match.group("tag") is not None and match.group("tag").isdigit():
            continue  # "#1" is a number, not a tag, as on Twitter
        if match.start() > position:
            tokens.append(Token("text", segment[position : match.start()], segment[position : match.start()]))
        if match.group("mention") is not None:
            tokens.append(Token("mention", match.group(0), match.group("mention")))
        else:
            name = match.group("weibo") if match.group("weibo") is not None else match.group("tag")
            tokens.append(Token("topic", match.group(0), topic_display(name)))
        position = match.end()
    if position < len(segment):
        tokens.append(Token("text", segment[position:], segment[position:]))
    return tokens


def tokenize(text: str) -> list[Token]:
    """Split `text` into text, URL, mention and topic tokens; joining every `raw` gives `text` back."""
    tokens: list[Token] = []
    position = 0
    for match in URL_RE.finditer(text):
        url = match.group(0)
        # A Weibo chain may follow a link with no space between: `...a.cn/x//@name: comment`.
        chain = url.find(CHAIN_MARK, url.index("://") + 3)
        if chain != -1:
            url = url[:chain]
        while url and url[-1] in _URL_TRAILING:
            url = url[:-1]
        end = match.start() + len(url)
        if len(url) <= len("https://"):
            continue
        tokens.extend(_inline_tokens(text[position : match.start()]))
        tokens.append(Token("url", url, url))
        position = end
    tokens.extend(_inline_tokens(text[position:]))
    return tokens


def _unique(values: list[str], *, as_topics: bool = False) -> list[str]:
    seen: set[str] = set()
    kept = []
    for value in values:
        marker = topic_key(value) if as_topics else value
        if marker not in seen:
            seen.add(marker)
            kept.append(value)
    return kept


def extract_mentions(text: str) -> list[str]:
    """The usernames mentioned in `text`, first mention first, each once."""
    return _unique([token.value for token in tokenize(text) if token.kind == "mention"])


def extract_topics(text: str) -> list[str]:
    """The topics in `text` (display names), each once by key, first use first."""
    return _unique([token.value for token in tokenize(text) if token.kind == "topic"], as_topics=True)


def extract_urls(text: str) -> list[str]:
    """The http(s) links in `text`, in order."""
    return [token.value for token in tokenize(text) if token.kind == "url"]


def _link(href: str, inner: str, **attrs: str) -> str:
    extra = "".join(f' {name.rstrip("_")}="{escape(value)}"' for name, value in attrs.items())
    return f'<a href="{escape(href)}"{extra}>{inner}</a>'


def link_display(url: str) -> str:
    """What a link in a post reads as: its host and path without the scheme or "www.", cut with "…".

    The link itself goes through our short link (/s/<code>), but its text names the destination, as
    Twitter's t.co links do and unlike the bare t.cn codes Weibo once showed: a code says nothing of
    where a tap leads, and readers of a shopping feed decide whether to tap by the shop's name.
    """
    shown = url.split("://", 1)[-1]
    if shown[:4].lower() == "www.":
        shown = shown[4:]
    if len(shown) > LINK_DISPLAY_LENGTH:
        shown = shown[: LINK_DISPLAY_LENGTH - 1] + "…"
    return shown


def _token_html(
    token: Token, *, base_url: str, mentions: Collection[str] | None, short_links: Mapping[str, str]
) -> str:
    if token.kind == "url":
        code = short_links.get(token.value)
        if code is None:
            return _link(
                token.value, escape(token.value), rel="nofollow noopener noreferrer", target="_blank"
            )
        return _link(
            f"{base_url}/s/{code}",
            escape(link_display(token.value)),
            title=token.value,
            rel="nofollow noopener noreferrer",
            target="_blank",
        )
    if token.kind == "mention":
        if mentions is not None and token.value.casefold() not in mentions:
            return escape(token.raw)
        href = f"{base_url}/@{quote(token.value)}"
        inner = f"@<span>{escape(token.value)}</span>"
        return f'<span class="h-card">{_link(href, inner, class_="u-url mention")}</span>'
    if token.kind == "topic":
        href = f"{base_url}/topics/{quote(topic_key(token.value), safe='')}"
        return _link(href, escape(token.raw), class_="mention hashtag", rel="tag")
    return escape(token.raw).replace("\n", "<br />")


def render_html(
    text: str,
    *,
    base_url: str = "",
    mentions: Collection[str] | None = None,
    short_links: Mapping[str, str] | None = None,
) -> str:
    """The post as HTML paragraphs, with links, mentions and topics linkified.

    `mentions`, when given, limits linking to those usernames (the ones that exist, matched without
    regard to case); `base_url` is put before the paths of mention, topic and short links (empty for
    pages of this site, the site URL for the API). `short_links` maps a URL of the text to the code of
    the post's short link for it: such a URL links to /s/<code> and reads as `link_display` shows it;
    any other URL links to itself.
    """
    codes = short_links or {}
    known = {name.casefold() for name in mentions} if mentions is not None else None
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not normalised:
        return ""
    paragraphs = [part.strip("\n") for part in re.split(r"\n\s*\n", normalised) if part.strip()]
    rendered = []
    for paragraph in paragraphs:
        inner = "".join(
            _token_html(token, base_url=base_url, mentions=known, short_links=codes)
            for token in tokenize(paragraph)
        )
        rendered.append(f"<p>{inner}</p>")
    return "".join(rendered)


def render_inline_html(text: str, *, base_url: str = "") -> str:
    """One line of text as HTML without paragraphs (a profile field's value), linkified as a post is:
    every piece escaped, http(s) links to themselves and topics to their pages. No @name is made a
    link, since whether the account exists is not known here; line breaks become spaces."""
    line = " ".join(text.replace("\r", "\n").split("\n")).strip()
    return "".join(
        _token_html(token, base_url=base_url, mentions=(), short_links={}) for token in tokenize(line)
    )
