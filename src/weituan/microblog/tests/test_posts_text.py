"""Parsing and rendering post text: mentions, both kinds of topics, links, and escaping of everything else."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weituan.microblog.text import (
    extract_mentions,
    extract_topics,
    extract_urls,
    render_html,
    tokenize,
    topic_key,
)


def test_mentions_accept_chinese_names_and_skip_emails():
    text = "你好@张三 和 @bob_1，请看 mail@example.com 以及 @x"
    assert extract_mentions(text) == ["张三", "bob_1"]


def test_mentions_in_a_repost_chain_are_found():
    assert extract_mentions("好//@alice: 转发//@美团小店: 快抢") == ["alice", "美团小店"]


def test_weibo_topics_may_hold_spaces_and_twitter_tags_end_at_punctuation():
    text = "#双十一 团购# 开始了 #deal, 还有 #团购。别忘了 #a #b"
    assert extract_topics(text) == ["双十一 团购", "deal", "团购", "a", "b"]


def test_topics_are_one_per_key_and_numbers_are_not_tags():
    assert extract_topics("#Deal# #deal #1 C# x#y") == ["Deal"]
    assert topic_key("  Double   Eleven ") == "double eleven"


def test_urls_are_found_without_trailing_punctuation():
    assert extract_urls("see https://t.cn/abc. and http://x.com/a?b=1)") == [
        "https://t.cn/abc",
        "http://x.com/a?b=1",
    ]


def test_tokens_join_back_to_the_text():
    text = "转发 @alice #话题# https://x.com/#frag #tag 你好\n<b>"
    assert "".join(token.raw for token in tokenize(text)) == text


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "javascript:alert(1)",
        '"><svg onload=alert(1)>',
        "<a href='javascript:alert(1)'>x</a>",
    ],
)
def test_markup_in_a_post_is_escaped(attack):
    html = render_html(f"hi {attack} @alice #topic#")
    assert "<script" not in html
    assert "<img" not in html
    assert "<svg" not in html
    assert "javascript:alert(1)'>" not in html
    assert 'onerror="' not in html
    assert html.count("<a ") == 2  # only the mention and the topic are links


def test_a_url_that_tries_to_break_out_of_its_attribute_stays_inside():
    html = render_html('go https://x.com/"onmouseover="alert(1) now')
    assert 'href="https://x.com/"' in html
    assert 'onmouseover="alert' not in html


def test_rendering_linkifies_urls_mentions_and_topics():
    html = render_html("看 https://t.cn/abc @张三 #团购 精选# #deal", base_url="https://wt.example")
    assert (
        '<a href="https://t.cn/abc" rel="nofollow noopener noreferrer" target="_blank">https://t.cn/abc</a>'
        in html
    )
    assert (
        '<a href="https://wt.example/@%E5%BC%A0%E4%B8%89" class="u-url mention">@<span>张三</span></a>'
        in html
    )
    assert 'href="https://wt.example/topics/%E5%9B%A2%E8%B4%AD%20%E7%B2%BE%E9%80%89"' in html
    assert 'href="https://wt.example/topics/deal" class="mention hashtag" rel="tag">#deal</a>' in html


def test_only_known_mentions_become_links_and_paragraphs_are_kept():
    html = render_html("@Alice and @nobody\nline two\n\npara", mentions=["alice"])
    assert html == (
        '<p><span class="h-card"><a href="/@Alice" class="u-url mention">@<span>Alice</span></a></span>'
        " and @nobody<br />line two</p><p>para</p>"
    )


def test_empty_text_renders_empty():
    assert render_html("   \n ") == ""


_PIECES = ["https://", "javascript:", "<script>", "@张三", *"ab1_ @#:/.<>\"'&;=\n 你好"]
_ALPHABET = st.sampled_from(_PIECES)


@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_tokens_always_join_back_and_rendering_adds_only_our_tags(text):
    assert "".join(token.raw for token in tokenize(text)) == text
    html = render_html(text)
    stripped = re.sub(
        r'<(/?(p|span|a)( (href|class|rel|target)="[^"<>]*")*|br /)>',
        "",
        html,
    )
    assert "<" not in stripped and ">" not in stripped
