"""A repost tree's size and depth count the tree its reader is given: hops left out for a reader (an
account they block or are blocked by or mute, a followers-only repost of someone they do not follow)
count for nothing, blanked hops count; the tree endpoint and the post's page give the same numbers to
the same reader, whatever the page cuts; the post's repost count stays the public one; and the read
costs the same queries however large the tree."""

import re
from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog import views
from weituan.microblog.models import Visibility
from weituan.microblog.queries import reposts
from weituan.microblog.queries.reposts import repost_tree
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import block_create, follow_create, mute_create

pytestmark = pytest.mark.django_db


def _forward(who: Any, post: Any, comment: str = "", visibility: str = Visibility.PUBLIC) -> Any:
    return repost_create(reposter=who, post_id=post.id, comment=comment, visibility=visibility)


def _chain_world() -> dict[str, Any]:
    """A shop's post forwarded by fan (depth 1), fan's by middle (2), middle's by tail (3), tail's by
    middle again (4, a leaf), and the post by middle without a word (1, a leaf). grudge blocked middle,
    middle blocked troll, hush muted middle; reader hides nobody."""
    people = {
        name: make_user(name)
        for name in ("dumpling_shop", "fan", "middle", "tail", "grudge", "troll", "hush")
    }
    people["reader"] = make_user("reader")
    block_create(blocker=people["grudge"], blocked_id=people["middle"].pk)
    block_create(blocker=people["middle"], blocked_id=people["troll"].pk)
    mute_create(muter=people["hush"], muted_id=people["middle"].pk)
    original = post_create(author=people["dumpling_shop"], text="水饺第二份半价")
    first = _forward(people["fan"], original, "好吃")
    middle_hop = _forward(people["middle"], first, "同去")
    tail_hop = _forward(people["tail"], middle_hop, "冲")
    _forward(people["middle"], tail_hop, "再来")
    _forward(people["middle"], original)
    return {**people, "original": original, "first": first}


def _private_world() -> dict[str, Any]:
    """A shop's post forwarded by regular (depth 1), regular's by insider (2, public), and insider's by
    insider again, followers-only (3, a leaf); insider also forwards the post followers-only (1, a
    leaf). friend follows insider; stranger does not."""
    people = {name: make_user(name) for name in ("tea_shop", "regular", "insider", "friend", "stranger")}
    follow_create(follower=people["friend"], followee_id=people["insider"].pk)
    original = post_create(author=people["tea_shop"], text="奶茶买一送一")
    first = _forward(people["regular"], original, "好喝")
    hop = _forward(people["insider"], first, "真的")
    _forward(people["insider"], hop, "只给粉丝看", visibility=Visibility.PRIVATE)
    _forward(people["insider"], original, "粉丝专享", visibility=Visibility.PRIVATE)
    return {**people, "original": original}


def _api_counts(client: Any, reader: Any, post_id: int) -> tuple[int, int]:
    if reader is None:
        client.logout()
    else:
        client.force_login(reader)
    tree = client.get(f"/api/v1/weituan/posts/{post_id}/tree").json()
    return tree["size"], tree["max_depth"]


def _page_counts(client: Any, reader: Any, post_id: int) -> tuple[int, int]:
    if reader is None:
        client.logout()
    else:
        client.force_login(reader)
    body = client.get(f"/p/{post_id}").content.decode()
    size = re.search(r'<b id="cascade-size">(\d+)</b>', body)
    depth = re.search(r'<b id="cascade-depth">(\d+)</b>', body)
    assert size is not None and depth is not None
    return int(size.group(1)), int(depth.group(1))


def test_a_reader_who_blocks_is_blocked_or_mutes_a_hop_counts_less_than_a_visitor(client: Any) -> None:
    world = _chain_world()
    original = world["original"].id
    everyone = (5, 4)
    assert _api_counts(client, None, original) == everyone
    assert _api_counts(client, world["reader"], original) == everyone
    assert _api_counts(client, world["middle"], original) == everyone
    # fan's hop, middle's blanked (tail's hangs from it) and tail's; middle's leaves are left out.
    for name in ("grudge", "troll", "hush"):
        assert _api_counts(client, world[name], original) == (3, 3), name
        assert len(repost_tree(original, world[name]).nodes) == 1 + 3
    # Below fan's hop, the same tree one level shorter.
    assert _api_counts(client, None, world["first"].id) == (3, 3)
    assert _api_counts(client, world["grudge"], world["first"].id) == (2, 2)


def test_a_followers_only_hop_counts_for_a_follower_not_for_a_stranger(client: Any) -> None:
    world = _private_world()
    original = world["original"].id
    for name in ("friend", "insider"):
        assert _api_counts(client, world[name], original) == (4, 3), name
    # Both followers-only forwards are leaves, so a stranger is given neither.
    assert _api_counts(client, world["stranger"], original) == (2, 2)
    assert _api_counts(client, None, original) == (2, 2)


def test_the_page_gives_each_reader_the_apis_numbers(client: Any) -> None:
    chain, private = _chain_world(), _private_world()
    readers = [(chain, None), *((chain, chain[name]) for name in ("reader", "grudge", "troll", "hush"))]
    readers += [(private, None), *((private, private[name]) for name in ("friend", "stranger"))]
    seen = set()
    for world, reader in readers:
        for post in ("original", "first") if world is chain else ("original",):
            post_id = world[post].id
            counts = _api_counts(client, reader, post_id)
            assert _page_counts(client, reader, post_id) == counts
            seen.add(counts)
    assert seen == {(5, 4), (3, 3), (2, 2), (4, 3)}


def test_a_page_that_shows_part_of_the_tree_still_gives_the_trees_numbers(
    client: Any, monkeypatch: Any
) -> None:
    world = _chain_world()
    monkeypatch.setattr(views, "TREE_NODES_SHOWN", 2)
    body = client.get(f"/p/{world['original'].id}").content.decode()
    assert body.count("<li data-depth=") == 2
    assert _page_counts(client, None, world["original"].id) == (5, 4)
    assert _api_counts(client, None, world["original"].id) == (5, 4)


def test_a_cut_tree_counts_the_part_read(client: Any, monkeypatch: Any) -> None:
    """The read stops at the oldest MAX_TREE_NODES hops; the numbers are those of the part read, as
    the reader is given it."""
    world = _chain_world()
    monkeypatch.setattr(reposts, "MAX_TREE_NODES", 3)  # fan's, middle's and tail's chain hops
    anyone = repost_tree(world["original"].id)
    assert (anyone.size, anyone.max_depth, anyone.truncated) == (3, 3, True)
    blocker = repost_tree(world["original"].id, world["grudge"])
    assert (blocker.size, blocker.max_depth, blocker.truncated) == (3, 3, True)
    assert [node.hidden for node in blocker.nodes] == [False, False, True, False]
    monkeypatch.setattr(reposts, "MAX_TREE_NODES", 2)  # tail's hop is past the cut: nothing hangs
    blocker = repost_tree(world["original"].id, world["grudge"])  # from middle's for grudge
    assert (blocker.size, blocker.max_depth, blocker.truncated) == (1, 1, True)


def test_the_posts_repost_count_stays_the_public_one(api_as: Any) -> None:
    world = _chain_world()
    for name in ("reader", "grudge", "troll", "hush"):
        status = api_as(world[name]).get(f"/api/v1/statuses/{world['original'].id}").json()
        assert status["reblogs_count"] == 5, name


def test_the_tree_read_costs_the_same_queries_however_large(django_assert_num_queries: Any) -> None:
    """For a reader with blocks and mutes, on a tree with followers-only hops: the post (and whether
    they may see it), the hops, the accounts hidden from them and those they follow among the
    followers-only hops' authors. A visitor needs the post and the hops only."""
    world = _chain_world()
    grudge, original = world["grudge"], world["original"]
    _forward(world["tail"], world["first"], "粉丝专享", visibility=Visibility.PRIVATE)
    with django_assert_num_queries(5):
        small = repost_tree(original.id, grudge)
    with django_assert_num_queries(2):
        repost_tree(original.id)
    parent = world["first"]
    for name in ("tail", "reader", "hush", "middle", "fan"):
        parent = _forward(world[name], parent, name)
        _forward(world[name], parent, "粉丝专享", visibility=Visibility.PRIVATE)
    _forward(world["troll"], original, "再说一次")
    with django_assert_num_queries(5):
        large = repost_tree(original.id, grudge)
    with django_assert_num_queries(2):
        repost_tree(original.id)
    assert len(large.nodes) > len(small.nodes)
