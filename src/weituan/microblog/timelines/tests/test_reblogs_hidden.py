"""A follow that hides the followee's reposts (Mastodon's `reblogs=false`), on both stores: plain reposts
stay out of the home timeline however they would arrive (fan-out, one post or a burst; backfill; rebuild;
the read-time merge of a high-follower author), quotes come in, and changing the flag changes what was
already delivered, also when it changes while a plain repost is on its way."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from weituan.accounts.tokens import access_token_issue
from weituan.microblog.models import Follow
from weituan.microblog.services.posts import repost_create
from weituan.microblog.services.relations import follow_create
from weituan.microblog.timelines import fanout
from weituan.microblog.timelines.fanout import fanout_deliver, fanout_deliver_many
from weituan.microblog.timelines.home import read_context, token_read_context
from weituan.microblog.timelines.models import TimelineState
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def follow_with(run_on_commit: Any) -> Any:
    """follow_with(follower, followee, reblogs) follows (or changes the follow) and runs what follows it."""

    def make(follower: Any, followee: Any, reblogs: bool | None) -> None:
        with run_on_commit():
            follow_create(follower=follower, followee_id=followee.pk, reblogs=reblogs)

    return make


def test_fanout_leaves_plain_reposts_out_for_a_follow_that_hides_them_and_brings_quotes(
    backend: str,
    merchant: Any,
    outsider: Any,
    people: Any,
    follow_with: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
) -> None:
    quiet, loud = people(2)
    follow_with(quiet, merchant, False)
    follow_with(loud, merchant, None)
    for reader in (quiet, loud):
        home_timeline_ids(reader.pk)
    first, second = post_as(outsider, "一号团"), post_as(outsider, "二号团")
    plain = repost_as(merchant, first)
    quote = repost_as(merchant, second, "这个划算")
    own = post_as(merchant, "本店新品")
    assert stored(quiet) == [own.id, quote.id]
    assert stored(loud) == [own.id, quote.id, plain.id]
    assert home_timeline_ids(quiet.pk) == [own.id, quote.id]
    # A burst delivered together skips them the same way.
    third = post_as(outsider, "三号团")
    burst = [
        repost_create(reposter=merchant, post_id=third.id),
        repost_create(reposter=merchant, post_id=first.id, comment="再转一次"),
    ]
    fanout_deliver_many(post_ids=[post.id for post in burst])
    assert stored(quiet) == [burst[1].id, own.id, quote.id]
    assert stored(loud) == [burst[1].id, burst[0].id, own.id, quote.id, plain.id]


def test_turning_reposts_off_takes_delivered_ones_out_and_on_brings_them_back(
    backend: str,
    shopper: Any,
    merchant: Any,
    outsider: Any,
    follow_with: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
) -> None:
    follow_with(shopper, merchant, None)
    home_timeline_ids(shopper.pk)
    first, second = post_as(outsider, "一号团"), post_as(outsider, "二号团")
    plain = repost_as(merchant, first)
    quote = repost_as(merchant, second, "冲")
    assert stored(shopper) == [quote.id, plain.id]

    follow_with(shopper, merchant, False)
    assert Follow.objects.get(follower=shopper, followee=merchant).show_reblogs is False
    assert stored(shopper) == [quote.id]
    assert home_timeline_ids(shopper.pk) == [quote.id]
    follow_with(shopper, merchant, None)  # asked again without saying: the follow stays as it is
    assert stored(shopper) == [quote.id]

    follow_with(shopper, merchant, True)
    assert Follow.objects.get(follower=shopper, followee=merchant).show_reblogs is True
    assert stored(shopper) == [quote.id, plain.id]
    # The follow itself was never made twice.
    assert Follow.objects.filter(follower=shopper).count() == 1


def test_backfill_and_rebuild_leave_them_out_too(
    backend: str,
    shopper: Any,
    merchant: Any,
    outsider: Any,
    follow_with: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
) -> None:
    home_timeline_ids(shopper.pk)
    first, second = post_as(outsider, "一号团"), post_as(outsider, "二号团")
    plain = repost_as(merchant, first)
    quote = repost_as(merchant, second, "冲")
    follow_with(shopper, merchant, False)  # backfill of the merchant's recent posts
    assert stored(shopper) == [quote.id]
    TimelineState.objects.filter(user_id=shopper.pk).update(built_at=None)
    assert home_timeline_ids(shopper.pk) == [quote.id]  # rebuilt from follows
    assert stored(shopper) == [quote.id]
    assert plain.id not in home_timeline_ids(shopper.pk, limit=40)


def test_a_high_follower_authors_plain_reposts_are_left_out_of_the_merge(
    backend: str,
    settings: Any,
    api_as: Any,
    shopper: Any,
    merchant: Any,
    outsider: Any,
    people: Any,
    follow_with: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
) -> None:
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    loud = people(2)
    for reader in loud:
        follow_with(reader, merchant, None)
    follow_with(shopper, merchant, False)
    for reader in (shopper, *loud):
        home_timeline_ids(reader.pk)
    originals = [post_as(outsider, f"{index}号团") for index in range(4)]
    plain = [repost_as(merchant, originals[index]) for index in (0, 1)]
    quote = repost_as(merchant, originals[2], "这个好")
    own = post_as(merchant, "本店新品")
    plain.append(repost_as(merchant, originals[3]))
    assert stored(shopper) == []  # nothing delivered: merged at read
    assert home_timeline_ids(shopper.pk) == [own.id, quote.id]
    assert home_timeline_ids(shopper.pk, limit=1) == [own.id]
    assert home_timeline_ids(shopper.pk, max_id=own.id) == [quote.id]
    assert home_timeline_ids(shopper.pk, min_id=plain[0].id, limit=1) == [quote.id]
    statuses = api_as(shopper).get("/api/v1/timelines/home").json()
    assert [status["id"] for status in statuses] == [str(own.id), str(quote.id)]
    # The path in front of Django reads the same context with the token, in one statement.
    raw, _ = access_token_issue(user=shopper)
    reader = token_read_context(raw)
    assert reader is not None and reader.context.reblogs_hidden == frozenset({merchant.pk})
    assert reader.context._replace(stamp_due=False) == read_context(shopper.pk)._replace(stamp_due=False)
    assert home_timeline_ids(loud[0].pk) == [plain[2].id, own.id, quote.id, plain[1].id, plain[0].id]

    follow_with(shopper, merchant, True)
    assert home_timeline_ids(shopper.pk) == [plain[2].id, own.id, quote.id, plain[1].id, plain[0].id]


def test_hiding_a_big_authors_reposts_costs_the_home_read_at_most_one_query(
    backend: str,
    settings: Any,
    shopper: Any,
    outsider: Any,
    merchant: Any,
    people: Any,
    follow_with: Any,
    post_as: Any,
    repost_as: Any,
) -> None:
    """None more on the database store (the filter is in the same statement); with Redis one, as the
    author's index cannot tell a plain repost from a quote."""
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    loud = people(2)
    for reader in loud:
        follow_with(reader, merchant, None)
    follow_with(shopper, merchant, False)
    for reader in (shopper, *loud):
        follow_with(reader, outsider, None)
        home_timeline_ids(reader.pk)
    for index in range(3):
        post = post_as(outsider, f"{index}号团")
        repost_as(merchant, post)
        repost_as(merchant, post, f"转 {index}")
    for reader in (shopper, *loud):
        home_timeline_ids(reader.pk)  # warm: states stamped, indexes made

    def queries(reader: Any) -> int:
        with CaptureQueriesContext(connection) as captured:
            home_timeline_ids(reader.pk)
        return len(captured)

    assert queries(shopper) == queries(loud[0]) + (1 if backend == "redis" else 0)


@pytest.mark.parametrize("together", [False, True])
def test_turning_reposts_off_while_a_plain_repost_is_delivered_keeps_it_out(
    backend: str,
    merchant: Any,
    outsider: Any,
    people: Any,
    follow_with: Any,
    post_as: Any,
    stored: Any,
    monkeypatch: Any,
    together: bool,
) -> None:
    quiet, loud = people(2)
    for reader in (quiet, loud):
        follow_with(reader, merchant, None)
        home_timeline_ids(reader.pk)
    original = post_as(outsider, "一号团")
    plain = repost_create(reposter=merchant, post_id=original.id)  # delivered below
    # Alone or in a burst, the delivery reads the followers first; right after that read, before the
    # entries are written, one follower turns the merchant's reposts off, and the clearing of what was
    # delivered before runs to its end.
    reading = "active_followers_of" if together else "active_follower_ids"
    read_followers = getattr(fanout, reading)

    def read_then_turned_off(*args: Any, **kwargs: Any) -> Any:
        found = read_followers(*args, **kwargs)
        follow_with(quiet, merchant, False)
        return found

    monkeypatch.setattr(fanout, reading, read_then_turned_off)
    if together:
        fanout_deliver_many(post_ids=[plain.id])
    else:
        fanout_deliver(post_id=plain.id)
    assert Follow.objects.get(follower=quiet, followee=merchant).show_reblogs is False
    assert stored(quiet) == []
    assert home_timeline_ids(quiet.pk) == []
    assert stored(loud) == [plain.id]


def test_the_readers_big_authors_are_read_from_the_follower_index_alone(backend: str, shopper: Any) -> None:
    """The home read's context finds which big authors the reader follows in one range of the reader's
    follows, from the (follower, followee) index alone (whether each follow hides plain reposts comes
    from the partial index of the few that do), not by descending the followee-first covering index
    once for every big author."""
    from weituan.accounts.tokens import access_token_viewer_params
    from weituan.microblog.timelines.home import _context_params, _floor_params, _token_context_sql

    raw, _ = access_token_issue(user=shopper)
    params = [*(access_token_viewer_params(raw) or []), *_floor_params(None), *_context_params()]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + _token_context_sql(), params)
            plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
            # The unique (follower, followee) constraint's index, as SQLite names it.
            assert (
                "SEARCH f USING COVERING INDEX sqlite_autoindex_microblog_follow_1 (follower_id=?" in plan
            ), plan
        else:
            # The test's few rows would be read by a sequential scan: ask for the indexes' plan.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("EXPLAIN " + _token_context_sql(), params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # One range of the reader's follows, by an index led by the follower.
            scan = next(line for line in plan.splitlines() if " on microblog_follow f " in line)
            assert "using follow_once " in scan or "using microblog_follow_follower_id" in scan, plan
    assert "follow_followee_cover" not in plan, plan
