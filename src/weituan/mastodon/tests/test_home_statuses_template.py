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
    assert template.fill({}) == nobody
    assert template.fill({b"f": {1, 2}, b"r": {3}}) == nobody  # flags on other posts only
    assert template.fill({b"f": {7}}) == nobody.replace(b'{"favourited":false', b'{"favourited":true')
    assert template.fill({b"r": {8}}) == (
        b'{"id":"8","favourited":false,"reblogged":true,"reblog":{"favourited":false,"reblogged":false}}'
    )
    assert template_of((b"{}",), ()).fill({b"f": {1}, b"r": {1}}) == b"{}"


def test_a_quote_slot_is_denied_unless_the_reader_may_quote_the_post() -> None:
    parts = (b'{"id":"9","favourited":', b',"quote_approval":{"current_user":', b"}}")
    template = template_of(parts, ((b"f", 9), (b"q", 9)))
    assert template.plain == b'{"id":"9","favourited":false,"quote_approval":{"current_user":"denied"}}'
    assert template.fill({}, {9}) == (
        b'{"id":"9","favourited":false,"quote_approval":{"current_user":"automatic"}}'
    )
    assert template.fill({b"f": {9}}, {8}) == (
        b'{"id":"9","favourited":true,"quote_approval":{"current_user":"denied"}}'
    )


def test_bookmark_and_pin_slots_are_filled_for_the_reader_they_are_about() -> None:
    parts = (b'{"id":"5","favourited":', b',"bookmarked":', b',"pinned":', b"}")
    template = template_of(parts, ((b"f", 5), (b"b", 5), (b"p", 5)))
    assert template.plain == b'{"id":"5","favourited":false,"bookmarked":false,"pinned":false}'
    kept = template.fill({b"b": {5}})
    assert kept == b'{"id":"5","favourited":false,"bookmarked":true,"pinned":false}'
    pinned = template.fill({b"f": {5}, b"b": {6}, b"p": {5}})
    assert pinned == b'{"id":"5","favourited":true,"bookmarked":false,"pinned":true}'
