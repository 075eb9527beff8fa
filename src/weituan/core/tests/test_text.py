from hypothesis import given
from hypothesis import strategies as st

from weituan.core.text import URL_WEIGHT, weighted_length


def test_latin_counts_one_and_cjk_counts_two():
    assert weighted_length("hello") == 5
    assert weighted_length("你好") == 4
    assert weighted_length("团购 deal!") == 4 + 1 + 5
    assert weighted_length("ＡＢ") == 4  # full-width latin


def test_every_url_counts_23_whatever_its_length():
    short = "see http://a.cn"
    long = "see https://example.com/" + "x" * 300
    assert weighted_length(short) == 4 + URL_WEIGHT
    assert weighted_length(long) == 4 + URL_WEIGHT
    assert weighted_length("买https://t.cn/abc 和 https://x.com/y") == 2 + 23 + 1 + 2 + 1 + 23


def test_140_chinese_characters_fill_the_default_limit():
    assert weighted_length("微" * 140) == 280


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_weighted_length_is_at_least_the_number_of_non_joiner_chars_without_urls(text):
    if "http" in text.lower():
        return
    visible = [ch for ch in text if ch not in ("\u200d", "\ufe0f")]
    assert len(visible) <= weighted_length(text) <= 2 * len(visible)


@given(st.text(max_size=50), st.text(max_size=50))
def test_weighted_length_adds_up_over_concatenation_with_a_space(a, b):
    if "http" in (a + b).lower():
        return
    assert weighted_length(a + " " + b) == weighted_length(a) + 1 + weighted_length(b)
