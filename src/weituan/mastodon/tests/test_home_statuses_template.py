"""A kept status's JSON filled with a reader's flags."""

from weituan.mastodon.home_statuses import template_of


def test_flags_are_filled_per_reader_and_the_plain_copy_is_every_flag_false() -> None:
    # A reblog of post 7 by post 8: the wrapper's flags, then the reblogged status's.
    parts = (
        b'{"id":"8","favourited":',
        b',"reblogged":',
        b',"reblog":{"favourited":',
        b',"reblogged":',
        b"}}",
    )
    template = template_of(parts, ((b"f", 8), (b"r", 8), (b"f", 7), (b"r", 7)))
    nobody = (
        b'{"id":"8","favourited":false,"reblogged":false,"reblog":{"favourited":false,"reblogged":false}}'
    )
    assert template.plain == nobody
    assert template.fill(set(), set()) == nobody
    assert template.fill({1, 2}, {3}) == nobody  # flags on other posts only
    assert template.fill({7}, set()) == nobody.replace(b'{"favourited":false', b'{"favourited":true')
    assert template.fill(set(), {8}) == (
        b'{"id":"8","favourited":false,"reblogged":true,"reblog":{"favourited":false,"reblogged":false}}'
    )
    assert template_of((b"{}",), ()).fill({1}, {1}) == b"{}"


def test_a_quote_slot_is_denied_unless_the_reader_may_quote_the_post() -> None:
    parts = (b'{"id":"9","favourited":', b',"quote_approval":{"current_user":', b"}}")
    template = template_of(parts, ((b"f", 9), (b"q", 9)))
    assert template.plain == b'{"id":"9","favourited":false,"quote_approval":{"current_user":"denied"}}'
    assert template.fill(set(), set(), quotable={9}) == (
        b'{"id":"9","favourited":false,"quote_approval":{"current_user":"automatic"}}'
    )
    assert template.fill({9}, set(), quotable={8}) == (
        b'{"id":"9","favourited":true,"quote_approval":{"current_user":"denied"}}'
    )


def test_a_bookmark_slot_is_filled_for_the_reader_who_keeps_the_post() -> None:
    parts = (b'{"id":"5","favourited":', b',"bookmarked":', b',"reblogged":', b"}")
    template = template_of(parts, ((b"f", 5), (b"b", 5), (b"r", 5)))
    assert template.plain == b'{"id":"5","favourited":false,"bookmarked":false,"reblogged":false}'
    assert (
        template.fill(set(), set(), {5})
        == b'{"id":"5","favourited":false,"bookmarked":true,"reblogged":false}'
    )
    assert (
        template.fill({5}, set(), {6}) == b'{"id":"5","favourited":true,"bookmarked":false,"reblogged":false}'
    )
