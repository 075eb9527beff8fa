"""The short links standing for the outbound URLs of a post (those leading off the site): made in bulk as the post is written, and read
back by post for rendering.

A post's links are one INSERT of every row (a post without a URL makes none). The rows are written out
as SQL rather than through the ORM so that a clash is settled without a savepoint: `ON CONFLICT DO
NOTHING` skips a row whose random code is taken (or whose post and URL already have a link, on a retried
write), `RETURNING` says which rows went in, and only the rest are tried again. Every value is a
parameter; only the model's own table and column names go into the SQL (hence the S608 waivers).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from weituan.core.errors import ValidationFailed
from weituan.tracking.channels import host_of
from weituan.tracking.models import LinkChannel, ShortLink
from weituan.tracking.services.events import site_hosts
from weituan.tracking.services.links import outbound_dedup_key, short_code_new, target_url_check

_COLUMNS = (
    "code", "target_url", "channel", "hop_depth", "sharer_id", "post_id", "deal_id", "campaign", "dedup_key",
    "created_at",
)  # fmt: skip
_ATTEMPTS = 5


def outbound_targets(urls: Iterable[str]) -> list[str]:
    """Those of `urls` that lead off the site and may stand behind a link (see `target_url_check`),
    each once, in order. A link to the site itself (a deal page, a short link) is not outbound: the
    visit it brings is seen where it lands, and wrapping a short link would count one tap twice."""
    own = site_hosts()
    kept: list[str] = []
    for url in dict.fromkeys(urls):
        try:
            target = target_url_check(url)
        except ValidationFailed:
            continue
        if host_of(target) not in own:
            kept.append(target)
    return kept


def _insert_sql(count: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in _COLUMNS)
    row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    return (
        f"INSERT INTO {quote(ShortLink._meta.db_table)} ({columns})"  # noqa: S608
        f" VALUES {', '.join([row] * count)} ON CONFLICT DO NOTHING"
    )


def _params(codes: dict[str, str], *, post_id: int, sharer_id: int | None, moment: datetime) -> list[Any]:
    stamp = connection.ops.adapt_datetimefield_value(moment)
    params: list[Any] = []
    for url, code in codes.items():
        key = outbound_dedup_key(post_id=post_id, url=url)
        params += [code, url, LinkChannel.OUTBOUND, 0, sharer_id, post_id, None, "", key, stamp]
    return params


def outbound_links_statement(
    *, post_id: int, urls: Sequence[str], sharer_id: int | None
) -> tuple[str, list[Any], dict[str, str]] | None:
    """The INSERT of the links of a post's `urls` (already `outbound_targets`), for a caller writing it
    as part of a larger statement: (sql, params, the code meant for each URL). None for no URL.

    A row may be skipped (its code taken); the caller counts what went in and calls
    `outbound_links_create` when some did not.
    """
    if not urls:
        return None
    codes = {url: short_code_new() for url in urls}
    params = _params(codes, post_id=post_id, sharer_id=sharer_id, moment=timezone.now())
    return _insert_sql(len(codes)), params, codes


def outbound_links_create(*, post_id: int, urls: Iterable[str], sharer_id: int | None) -> dict[str, str]:
    """Make the links of a post's URLs (those `target_url_check` accepts), one statement in the usual
    case; returns each URL's code. Idempotent: a URL of this post that has a link keeps it."""
    pending = outbound_targets(urls)
    made: dict[str, str] = {}
    for _ in range(_ATTEMPTS):
        if not pending:
            return made
        codes = {url: short_code_new() for url in pending}
        params = _params(codes, post_id=post_id, sharer_id=sharer_id, moment=timezone.now())
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                _insert_sql(len(codes)) + f" RETURNING {quote('target_url')}, {quote('code')}", params
            )
            made.update(cursor.fetchall())
        pending = [url for url in pending if url not in made]
        if pending:
            keys = {outbound_dedup_key(post_id=post_id, url=url): url for url in pending}
            made.update(ShortLink.objects.filter(dedup_key__in=list(keys)).values_list("target_url", "code"))
            pending = [url for url in pending if url not in made]
    if pending:
        raise RuntimeError("could not allocate a short link code")
    return made


def outbound_links_of(post_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """The outbound links of each post that has any: post id -> {destination URL: code}. One query."""
    ids = list(dict.fromkeys(post_ids))
    found: dict[int, dict[str, str]] = {}
    if not ids:
        return found
    rows = ShortLink.objects.filter(post_id__in=ids, channel=LinkChannel.OUTBOUND).values_list(
        "post_id", "target_url", "code"
    )
    for post_id, url, code in rows:
        if post_id is not None:  # never None here (the rows are filtered on it); for the type checker
            found.setdefault(post_id, {})[url] = code
    return found
