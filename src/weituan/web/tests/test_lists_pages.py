"""Groups (分组) in the pages with the Django client: the groups page makes one, its page renames,
deletes and fills it from the accounts followed, a profile's "Add to group", and the home page's tabs
reading one group's timeline with the same infinite scroll; refusals in the page's words, nothing
written."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import FollowList, FollowListMember
from weituan.microblog.services.lists import follow_list_create, follow_list_members_add
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create
from weituan.web import views as web_views

HTMX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


def test_a_group_is_made_filled_renamed_and_deleted_from_its_pages(
    client: Any, shopper: Any, merchant: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    client.force_login(shopper)
    assert "分组" in client.get("/").content.decode()  # the menu's entry
    empty = client.get("/lists").content.decode()
    assert "我的分组" in empty and "还没有分组" in empty

    made = client.post("/lists", {"title": "好店"})
    group = FollowList.objects.get(owner=shopper)
    assert made["Location"] == f"/lists/{group.pk}"
    page = client.get(made["Location"]).content.decode()
    assert 'id="group-offered"' in page and "@meituan_shop" in page

    added = client.post(f"/lists/{group.pk}/members", {"account": merchant.pk, "action": "add"})
    assert added.status_code == 302
    assert list(FollowListMember.objects.values_list("account_id", flat=True)) == [merchant.pk]
    page = client.get(f"/lists/{group.pk}").content.decode()
    assert 'id="group-members"' in page and 'id="group-offered"' not in page

    client.post(f"/lists/{group.pk}/rename", {"title": "常去的店"})
    assert FollowList.objects.get().title == "常去的店"
    listed = client.get("/lists").content.decode()
    assert "常去的店" in listed and "1 个账号" in listed

    client.post(f"/lists/{group.pk}/members", {"account": merchant.pk, "action": "remove"})
    assert not FollowListMember.objects.exists()
    deleted = client.post(f"/lists/{group.pk}/delete", **HTMX)
    assert (deleted.status_code, deleted["HX-Redirect"]) == (204, "/lists")
    assert not FollowList.objects.exists()


def test_refusals_are_told_in_the_pages_words_and_change_nothing(
    client: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    client.force_login(shopper)
    blank = client.post("/lists", {"title": "  "}, **HTMX)
    assert blank.status_code == 422 and "给分组起个名字" in blank.content.decode()
    long = client.post("/lists", {"title": "长" * 51}, **HTMX)
    assert long.status_code == 422 and "分组名最多 50 个字" in long.content.decode()
    assert not FollowList.objects.exists()

    group = follow_list_create(owner=shopper, title="店")
    stranger = client.post(f"/lists/{group.pk}/members", {"account": outsider.pk, "action": "add"}, **HTMX)
    assert stranger.status_code == 422 and "只能把你关注的人加入分组" in stranger.content.decode()
    assert not FollowListMember.objects.exists()

    # Someone else's group is not found, in its pages and on the home page.
    theirs = follow_list_create(owner=outsider, title="theirs")
    assert client.get(f"/lists/{theirs.pk}").status_code == 404
    assert client.get(f"/?list={theirs.pk}").status_code == 404
    assert client.get("/?list=abc").status_code == 404
    refused = client.post(f"/lists/{theirs.pk}/rename", {"title": "mine now"}, **HTMX)
    assert refused.status_code == 404
    assert client.post(f"/lists/{theirs.pk}/delete", **HTMX).status_code == 404
    assert FollowList.objects.get(pk=theirs.pk).title == "theirs"


def test_a_profile_offers_the_groups_of_a_followed_account(
    client: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    group = follow_list_create(owner=shopper, title="好店")
    client.force_login(shopper)
    assert "加入分组" not in client.get("/@charlie").content.decode()  # not followed
    profile = client.get("/@meituan_shop").content.decode()
    assert "加入分组" in profile and 'aria-pressed="false"' in profile

    added = client.post(
        f"/lists/{group.pk}/members", {"account": merchant.pk, "action": "add", "from": "profile"}, **HTMX
    )
    body = added.content.decode()
    assert added.status_code == 200
    assert 'aria-pressed="true"' in body and "已加入「好店」。" in body
    assert FollowListMember.objects.filter(follow_list=group, account=merchant).exists()


def test_the_home_tabs_read_one_group_with_infinite_scroll(
    client: Any, shopper: Any, merchant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_views, "PAGE_SIZE", 2)
    friend = make_user("bob")
    for followee in (merchant, friend):
        follow_create(follower=shopper, followee_id=followee.pk)
    group = follow_list_create(owner=shopper, title="好店")
    follow_list_members_add(owner=shopper, list_id=group.pk, account_ids=[merchant.pk])
    offers = [post_create(author=merchant, text=f"特价 {n}") for n in range(3)]
    chatter = post_create(author=friend, text="闲聊")
    client.force_login(shopper)

    home = client.get("/").content.decode()
    assert f'href="/?list={group.pk}"' in home and f'id="post-{chatter.id}"' in home

    page = client.get(f"/?list={group.pk}").content.decode()
    assert 'aria-current="page">好店</a>' in page
    assert f'id="post-{chatter.id}"' not in page
    assert f'id="post-{offers[2].id}"' in page and f'id="post-{offers[1].id}"' in page
    assert 'id="compose' not in page  # writing is on the whole timeline's tab
    more = f"/?list={group.pk}&amp;max_id={offers[1].id}"
    assert f'hx-get="{more}"' in page
    assert f"/timeline/new?since_id={offers[2].id}&amp;list={group.pk}" in page

    scrolled = client.get(f"/?list={group.pk}&max_id={offers[1].id}", **HTMX).content.decode()
    assert f'id="post-{offers[0].id}"' in scrolled and "没有更多了" in scrolled

    newer = post_create(author=merchant, text="新品")
    post_create(author=friend, text="又闲聊")
    poll = client.get(f"/timeline/new?since_id={offers[2].id}&list={group.pk}&show=1").content.decode()
    assert f'id="post-{newer.id}"' in poll and "又闲聊" not in poll
