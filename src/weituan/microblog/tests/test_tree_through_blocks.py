"""A post's repost tree as each reader is shown it: a hop by an account hidden from the reader (a block
either way, a mute) keeps its place, blanked, when hops the reader sees hang from it, and is left out
when none do; on the Weituan tree endpoint and on the post's page. Deleted hops read as before. The
tree's size and depth count what the reader is given (test_tree_counts_per_reader.py has more)."""

import re
from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.queries.reposts import repost_tree
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.services.relations import block_create, mute_create

pytestmark = pytest.mark.django_db

HIDING = ("grudge", "troll", "hush")
NOT_VISIBLE = "此微博不可见"


def _world() -> dict[str, Any]:
    """A shop's post forwarded by fan ("好价"); middle forwards fan's ("同去"), tail middle's ("冲"), and
    middle tail's ("再来"); middle also forwards the post without a word. fan forwards the post again
    and deletes it; middle forwards fan's again ("删前"), tail forwards that ("接着转"), then middle
    deletes theirs. grudge blocked middle, middle blocked troll, hush muted middle; reader hides nobody."""
    people = {name: make_user(name) for name in ("noodle_shop", "fan", "middle", "tail", *HIDING, "reader")}
    block_create(blocker=people["grudge"], blocked_id=people["middle"].pk)
    block_create(blocker=people["middle"], blocked_id=people["troll"].pk)
    mute_create(muter=people["hush"], muted_id=people["middle"].pk)
    original = post_create(author=people["noodle_shop"], text="牛肉面买一送一")

    def forward(name: str, post: Any, comment: str = "") -> Any:
        return repost_create(reposter=people[name], post_id=post.id, comment=comment)

    first = forward("fan", original, "好价")
    middle_hop = forward("middle", first, "同去")
    tail_hop = forward("tail", middle_hop, "冲")
    middle_leaf = forward("middle", tail_hop, "再来")
    middle_plain = forward("middle", original)
    gone = forward("fan", original, "删了的")
    middle_gone = forward("middle", first, "删前")
    tail_again = forward("tail", middle_gone, "接着转")
    post_delete(actor=people["fan"], post_id=gone.id)
    post_delete(actor=people["middle"], post_id=middle_gone.id)
    posts = {
        "original": original,
        "first": first,
        "middle_hop": middle_hop,
        "tail_hop": tail_hop,
        "middle_leaf": middle_leaf,
        "middle_plain": middle_plain,
        "gone": gone,
        "middle_gone": middle_gone,
        "tail_again": tail_again,
    }
    return {**people, **posts}


def _rows(
    world: dict[str, Any], *rows: tuple[str, str | None, int, str | None, str, bool, bool]
) -> list[Any]:
    """The nodes expected, as the endpoint gives them: (id, parent id, depth, username, comment,
    deleted, hidden), the posts named by their world keys."""
    return [
        (
            str(world[post].id),
            str(world[parent].id) if parent else None,
            depth,
            username,
            comment,
            deleted,
            hidden,
        )
        for post, parent, depth, username, comment, deleted, hidden in rows
    ]


def _shown(tree: dict[str, Any]) -> list[Any]:
    return [
        (
            node["id"],
            node["parent_id"],
            node["depth"],
            node["account"]["username"] if node["account"] else None,
            node["comment"],
            node["deleted"],
            node["hidden"],
        )
        for node in tree["nodes"]
    ]


def test_a_reader_who_hides_nobody_sees_every_hop(api_as: Any) -> None:
    world = _world()
    tree = api_as(world["reader"]).get(f"/api/v1/weituan/posts/{world['original'].id}/tree").json()
    assert _shown(tree) == _rows(
        world,
        ("original", None, 0, "noodle_shop", "牛肉面买一送一", False, False),
        ("first", "original", 1, "fan", "好价", False, False),
        ("middle_hop", "first", 2, "middle", "同去", False, False),
        ("tail_hop", "middle_hop", 3, "tail", "冲", False, False),
        ("middle_leaf", "tail_hop", 4, "middle", "再来", False, False),
        ("middle_plain", "original", 1, "middle", "", False, False),
        ("gone", "original", 1, "fan", "", True, False),
        ("middle_gone", "first", 2, "middle", "", True, False),
        ("tail_again", "middle_gone", 3, "tail", "接着转", False, False),
    )
    assert (tree["size"], tree["max_depth"], tree["truncated"]) == (6, 4, False)


def test_a_hidden_authors_hops_are_blanked_or_left_out_and_the_shape_kept(api_as: Any) -> None:
    world = _world()
    for name in HIDING:
        answer = api_as(world[name]).get(f"/api/v1/weituan/posts/{world['original'].id}/tree")
        assert answer.status_code == 200
        for said in ("middle", "同去", "再来", "删前"):
            assert said not in answer.content.decode()
        tree = answer.json()
        shown_accounts = {node["account"]["id"] for node in tree["nodes"] if node["account"]}
        assert str(world["middle"].pk) not in shown_accounts
        # middle's hops under which tail's hang keep their place, blanked; those with nothing the
        # reader sees below them are left out. fan's deleted forward reads as before.
        assert _shown(tree) == _rows(
            world,
            ("original", None, 0, "noodle_shop", "牛肉面买一送一", False, False),
            ("first", "original", 1, "fan", "好价", False, False),
            ("middle_hop", "first", 2, None, "", False, True),
            ("tail_hop", "middle_hop", 3, "tail", "冲", False, False),
            ("gone", "original", 1, "fan", "", True, False),
            ("middle_gone", "first", 2, None, "", True, True),
            ("tail_again", "middle_gone", 3, "tail", "接着转", False, False),
        )
        # The counts are of this tree: fan's, the blanked middle_hop, and tail's two; middle's leaf
        # at depth 4 is left out, so tail's hops are the deepest.
        assert (tree["size"], tree["max_depth"], tree["truncated"]) == (4, 3, False)
        # A subtree reads the same way.
        below = api_as(world[name]).get(f"/api/v1/weituan/posts/{world['first'].id}/tree").json()
        assert [(node["id"], node["hidden"]) for node in below["nodes"]] == [
            (str(world[post].id), hidden)
            for post, hidden in (
                ("first", False),
                ("middle_hop", True),
                ("tail_hop", False),
                ("middle_gone", True),
                ("tail_again", False),
            )
        ]


def test_the_tree_read_leaves_the_hidden_authors_nodes_without_author() -> None:
    world = _world()
    tree = repost_tree(world["tail_hop"].id, world["hush"])
    # tail's hop itself; middle's reply to it ends with middle, so hush sees no node below it.
    assert [node.id for node in tree.nodes] == [world["tail_hop"].id]
    assert (tree.size, tree.max_depth) == (0, 0)
    for node in repost_tree(world["original"].id, world["grudge"]).nodes:
        if node.hidden:
            assert (node.author_id, node.username, node.display_name, node.comment) == (None, "", "", "")


def _tree_section(body: str) -> str:
    start = body.index('id="repost-tree"')
    return body[start : body.index("</section>", start)]


def test_the_post_page_shows_a_hidden_authors_hop_as_not_visible(client: Any) -> None:
    world = _world()
    page = f"/p/{world['original'].id}"
    for name in HIDING:
        client.force_login(world[name])
        body = client.get(page).content.decode()
        tree = _tree_section(body)
        for said in ("同去", "再来", "删前"):
            assert said not in body
        assert "middle" not in tree and "@middle" not in body
        assert tree.count(NOT_VISIBLE) == 2
        assert tree.count("<li data-depth=") == 6
        # tail's forward hangs under the blanked hop, one level down, as for everyone.
        assert tree.index("好价") < tree.index(NOT_VISIBLE) < tree.index("<ul>", tree.index(NOT_VISIBLE))
        assert re.search(rf"{NOT_VISIBLE}</span><ul><li data-depth=\"3\">.*?冲", tree)
        assert '<b id="cascade-size">4</b>' in body and '<b id="cascade-depth">3</b>' in body
    for reader in (world["reader"], None):
        if reader is None:
            client.logout()
        else:
            client.force_login(reader)
        body = client.get(page).content.decode()
        tree = _tree_section(body)
        assert NOT_VISIBLE not in tree
        assert tree.count("<li data-depth=") == 8
        for said in ("同去", "再来", "/@middle"):
            assert said in tree
        assert '<b id="cascade-size">6</b>' in body and '<b id="cascade-depth">4</b>' in body


def test_followers_only_hops_show_only_to_followers(client: Any) -> None:
    """A followers-only forward is a hop of the tree only for its author's followers (and its author):
    to anyone else, and to a visitor not logged in, it is blanked where a hop they see hangs from it
    and left out where none does."""
    from weituan.microblog.services.relations import follow_create

    shop, insider, friend, stranger = (
        make_user(name) for name in ("tea_shop", "insider", "friend", "stranger")
    )
    follow_create(follower=friend, followee_id=insider.pk)
    original = post_create(author=shop, text="奶茶第二杯半价")
    secret = repost_create(reposter=insider, post_id=original.id, comment="只给粉丝看", visibility="private")
    again = repost_create(reposter=insider, post_id=secret.id, comment="自己再转一次")  # public, below it
    leaf = repost_create(
        reposter=insider, post_id=original.id, comment="仅粉丝的另一条", visibility="private"
    )

    def seen(viewer: Any) -> list[tuple[int, str, bool]]:
        return [(node.id, node.comment, node.hidden) for node in repost_tree(original.id, viewer).nodes[1:]]

    everything = [
        (secret.id, "只给粉丝看", False),
        (again.id, "自己再转一次", False),
        (leaf.id, "仅粉丝的另一条", False),
    ]
    assert seen(insider) == everything
    assert seen(friend) == everything
    outside = [(secret.id, "", True), (again.id, "自己再转一次", False)]
    assert seen(stranger) == outside
    assert seen(None) == outside
    # The counts are of the tree each is given: the blanked hop counts, the one left out does not.
    assert (repost_tree(original.id, friend).size, repost_tree(original.id, friend).max_depth) == (3, 2)
    assert (repost_tree(original.id, stranger).size, repost_tree(original.id, stranger).max_depth) == (2, 2)

    client.force_login(stranger)
    body = client.get(f"/api/v1/weituan/posts/{original.id}/tree").json()
    texts = str(body)
    assert "只给粉丝看" not in texts and "仅粉丝的另一条" not in texts and "自己再转一次" in texts
