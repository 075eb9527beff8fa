"""A repost's chain (`comment//@name: comment...`) as each reader is shown it: the hops of accounts hidden
from the reader (a block either way, a mute) are left out, in the API's content and Weituan extras, on
the home and public timelines whose renderings are kept for every reader, and on the pages; the hops
whose reposts were deleted read "此微博已被作者删除" for everyone, renderings kept before included."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.services.relations import block_create, follow_create, mute_create
from weituan.microblog.text import CHAIN_HOP_DELETED
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db

HIDING = ("grudge", "troll", "hush")


def _world(run_on_commit: Any) -> dict[str, Any]:
    """A shop's post quoted by fan ("好价"), fan's quote quoted by middle ("同去"), middle's quoted by
    tail ("冲") and forwarded by tail without a word. grudge blocked middle, middle blocked troll, hush
    muted middle, reader has no quarrel; all four follow tail and read their home timelines."""
    people = {name: make_user(name) for name in ("noodle_shop", "fan", "middle", "tail", *HIDING, "reader")}
    with run_on_commit():
        block_create(blocker=people["grudge"], blocked_id=people["middle"].pk)
        block_create(blocker=people["middle"], blocked_id=people["troll"].pk)
        mute_create(muter=people["hush"], muted_id=people["middle"].pk)
        for name in (*HIDING, "reader"):
            follow_create(follower=people[name], followee_id=people["tail"].pk)
    for name in (*HIDING, "reader"):
        home_timeline_ids(people[name].pk)
    with run_on_commit():
        original = post_create(author=people["noodle_shop"], text="牛肉面买一送一")
        first = repost_create(reposter=people["fan"], post_id=original.id, comment="好价")
        middle = repost_create(reposter=people["middle"], post_id=first.id, comment="同去")
        quote = repost_create(reposter=people["tail"], post_id=middle.id, comment="冲")
        plain = repost_create(reposter=people["tail"], post_id=middle.id)
    assert quote.text == "冲//@middle: 同去//@fan: 好价"
    return {
        **people,
        "original": original,
        "first": first,
        "middle_quote": middle,
        "quote": quote,
        "plain": plain,
    }


def _said(status: dict[str, Any]) -> list[tuple[str, str]]:
    """The chain's hops in the Weituan extras: who said what."""
    return [(hop["username"], hop["comment"]) for hop in status["weituan"]["chain"]]


def _hops(status: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(hop["username"], hop["comment"], hop.get("deleted")) for hop in status["weituan"]["chain"]]


def test_the_api_leaves_a_hidden_authors_hop_out_of_the_chain(api_as: Any, run_on_commit: Any) -> None:
    world = _world(run_on_commit)
    quote, plain = world["quote"], world["plain"]
    for name in HIDING:
        client = api_as(world[name])
        seen = client.get(f"/api/v1/statuses/{quote.id}")
        assert seen.status_code == 200
        assert "同去" not in seen.content.decode() and "middle" not in seen.content.decode()
        body = seen.json()
        assert body["content"].endswith("</span>: 好价</p>") and body["content"].startswith("<p>冲//")
        assert _said(body) == [("fan", "好价")]
        # Forwarded without a word: middle's quote is not nested, and its words are not carried.
        forwarded = client.get(f"/api/v1/statuses/{plain.id}")
        assert forwarded.json()["reblog"] is None
        assert "同去" not in forwarded.content.decode() and "middle" not in forwarded.content.decode()
        assert _said(forwarded.json()) == [("fan", "好价")]
    shown = api_as(world["reader"]).get(f"/api/v1/statuses/{quote.id}").json()
    assert "同去" in shown["content"]
    assert _hops(shown) == [("middle", "同去", False), ("fan", "好价", False)]  # neither deleted
    reblog = api_as(world["reader"]).get(f"/api/v1/statuses/{plain.id}").json()
    assert reblog["reblog"]["id"] == str(world["middle_quote"].id)


def test_kept_timeline_renderings_show_each_reader_their_own_chain(api_as: Any, run_on_commit: Any) -> None:
    world = _world(run_on_commit)
    quote, plain = world["quote"], world["plain"]
    # Each reads the home and public timelines in turn, twice: the renderings kept for everyone serve
    # the reader who hides nobody, and never carry a reader's hidden hops to another.
    for _round in range(2):
        for name in ("reader", *HIDING):
            client = api_as(world[name])
            home = client.get("/api/v1/timelines/home")
            public = client.get("/api/v1/timelines/public")
            assert [status["id"] for status in home.json()] == [str(plain.id), str(quote.id)]
            assert str(quote.id) in [status["id"] for status in public.json()]
            statuses = {status["id"]: status for status in [*home.json(), *public.json()]}
            if name == "reader":
                assert _said(statuses[str(quote.id)]) == [("middle", "同去"), ("fan", "好价")]
                assert statuses[str(plain.id)]["reblog"]["id"] == str(world["middle_quote"].id)
            else:
                for page in (home, public):
                    assert "同去" not in page.content.decode() and "middle" not in page.content.decode()
                assert _said(statuses[str(quote.id)]) == [("fan", "好价")]
                assert statuses[str(plain.id)]["reblog"] is None
                assert "好价" in statuses[str(plain.id)]["content"]


def test_the_pages_leave_a_hidden_authors_hop_out_of_the_chain(client: Any, run_on_commit: Any) -> None:
    world = _world(run_on_commit)
    quote = world["quote"]
    for name in HIDING:
        client.force_login(world[name])
        for path in (f"/p/{quote.id}", "/@tail"):
            body = client.get(path).content.decode()
            assert "好价" in body and "同去" not in body and "@middle" not in body
    client.force_login(world["reader"])
    assert "同去" in client.get(f"/p/{quote.id}").content.decode()
    client.logout()
    assert "同去" in client.get(f"/p/{quote.id}").content.decode()


def test_a_deleted_hop_reads_as_deleted_for_everyone_also_where_a_rendering_was_kept(
    api_as: Any, client: Any, run_on_commit: Any
) -> None:
    world = _world(run_on_commit)
    quote, reader = world["quote"], api_as(world["reader"])
    assert "好价" in reader.get("/api/v1/timelines/home").json()[1]["content"]  # kept for everyone
    assert "好价" in reader.get("/api/v1/timelines/public").content.decode()
    with run_on_commit():
        post_delete(actor=world["fan"], post_id=world["first"].id)  # two hops above the quote
    for page in ("/api/v1/timelines/home", "/api/v1/timelines/public", f"/api/v1/statuses/{quote.id}"):
        answer = reader.get(page)
        assert "好价" not in answer.content.decode()
        statuses = answer.json() if isinstance(answer.json(), list) else [answer.json()]
        shown = next(status for status in statuses if status["id"] == str(quote.id))
        assert _hops(shown) == [("middle", "同去", False), ("fan", "", True)]
        assert shown["content"].endswith(f"</span>: {CHAIN_HOP_DELETED}</p>")
    # Middle's own quote, whose parent it was, says so too; and the pages.
    seen = reader.get(f"/api/v1/statuses/{world['middle_quote'].id}").json()
    assert seen["content"].startswith("<p>同去//") and seen["content"].endswith(f": {CHAIN_HOP_DELETED}</p>")
    body = client.get(f"/p/{quote.id}").content.decode()
    assert CHAIN_HOP_DELETED in body and "好价" not in body

    # Deleting the hop the plain repost forwarded: what is left of it is a forward of the original.
    with run_on_commit():
        post_delete(actor=world["middle"], post_id=world["middle_quote"].id)
    forwarded = reader.get(f"/api/v1/statuses/{world['plain'].id}").json()
    assert forwarded["reblog"]["id"] == str(world["original"].id)
    assert _hops(forwarded) == [("middle", "", True), ("fan", "", True)]
    shown = next(s for s in reader.get("/api/v1/timelines/home").json() if s["id"] == str(quote.id))
    assert _hops(shown) == [("middle", "", True), ("fan", "", True)]
    assert "同去" not in shown["content"]


def test_the_chain_endpoint_leaves_a_hidden_authors_hop_out(api_as: Any, run_on_commit: Any) -> None:
    world = _world(run_on_commit)
    path = f"/api/v1/weituan/posts/{world['quote'].id}/chain"
    for name in HIDING:
        hops = api_as(world[name]).get(path).json()["hops"]
        assert [hop["username"] for hop in hops] == ["tail", "fan", "noodle_shop"]
    hops = api_as(world["reader"]).get(path).json()["hops"]
    assert [hop["username"] for hop in hops] == ["tail", "middle", "fan", "noodle_shop"]
