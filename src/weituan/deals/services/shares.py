"""Shares of deals: which short link an order came through (a deal post's, a repost hop's, a team's),
and the sharer's own links to a team and to their invite page, as tracking issues them."""

from dataclasses import dataclass
from typing import Any

from django.urls import reverse

SHARE_CODE_MAX = 16  # the longest short-link code
SHARE_CHANNEL = "microblog"  # a shopper's own share, wherever they paste it, as a post's share is
INVITE_CAMPAIGN = "invite"


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


def team_share_code(*, team: Any, sharer_id: int, site_url: str) -> str:
    """`sharer_id`'s own short link to a team's page, as its code: one per sharer and team, made on the
    first ask. It carries the deal's post (when the deal was announced) and the deal, so a friend who
    opens it and joins is credited to this share, as a repost hop's link is."""
    from weituan.tracking import facade as tracking

    link = tracking.short_link_for_share(
        sharer_id=sharer_id,
        post_id=team.deal.post_id,
        target_url=site_url.rstrip("/") + reverse("deals:team", args=[team.id]),
        channel=SHARE_CHANNEL,
        deal_id=team.deal_id,
        campaign=f"team-{team.id}",
    )
    return link.code


def invite_share_code(*, inviter: Any, site_url: str) -> str:
    """The inviter's own short link to their invite page (/invite/<username>), as its code."""
    from weituan.tracking import facade as tracking

    link = tracking.short_link_for_share(
        sharer_id=inviter.id,
        post_id=None,
        target_url=site_url.rstrip("/") + reverse("deals:invite", args=[inviter.username]),
        channel=SHARE_CHANNEL,
        campaign=INVITE_CAMPAIGN,
    )
    return link.code
