"""Which share an order came through: a deal post's short link or a repost hop's, as tracking issued it."""

from dataclasses import dataclass

SHARE_CODE_MAX = 16  # the longest short-link code


@dataclass(frozen=True)
class ShareRef:
    """The short link (a deal post's or a repost hop's) an order was placed through."""

    code: str
    link_id: int
    sharer_id: int | None
    post_id: int | None
    hop_depth: int


def share_resolve(*, code: str, deal_id: int) -> ShareRef | None:
    """The short link behind `code` if it leads to this deal (a deal post's link or a repost hop's)."""
    from weituan.tracking import queries as tracking_queries

    if not (code.isascii() and code.isalnum() and len(code) <= SHARE_CODE_MAX):
        return None
    link = tracking_queries.short_link_get(code)
    if link is None or link.deal_id != deal_id:
        return None
    return ShareRef(
        code=link.code,
        link_id=link.pk,
        sharer_id=link.sharer_id,
        post_id=link.post_id,
        hop_depth=link.hop_depth,
    )
