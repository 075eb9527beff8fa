"""A reader's keyword filters on every status rendered for them: the status a quote shows (on its own and
inside a reblog), one status read by id, several read by id[], one notification, and grouped
notifications; a status asked for by id is marked, never left out; renderings kept for every reader
carry no one reader's matches."""

from typing import Any

import pytest

from weituan.microblog.models import Notification
from weituan.microblog.queries.notification_groups import group_key
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _filter(
    client: Any, title: str, keyword: str, context: list[str], action: str = "warn"
) -> dict[str, Any]:
    body = {
        "title": title,
        "context": context,
        "filter_action": action,
        "keywords_attributes": [{"keyword": keyword}],
    }
    response = client.post("/api/v2/filters", body, content_type=JSON)
    assert response.status_code == 200, response.content
    return response.json()


def _titles(filtered: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(result["filter"]["title"], result["filter"]["filter_action"]) for result in filtered]


def test_the_status_a_quote_shows_carries_its_own_matches(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=outsider.pk)
    follow_create(follower=merchant, followee_id=outsider.pk)
    spoiler = post_create(author=merchant, text="大结局剧透：他是凶手")
    quote = repost_create(reposter=outsider, post_id=spoiler.id, comment="看看这个")
    boosted = repost_create(reposter=outsider, post_id=quote.id)
    reader = api_as(shopper)
    _filter(reader, "剧透", "剧透", ["home", "thread"])
    _filter(reader, "不看剧透", "剧透", ["account"], action="hide")

    home = {status["id"]: status for status in reader.get("/api/v1/timelines/home").json()}
    assert set(home) == {str(quote.id), str(boosted.id)}
    shown = home[str(quote.id)]
    # The quote says nothing filtered of its own; the status it quotes tells the match.
    assert shown["filtered"] == [] and _titles(shown["quote"]["quoted_status"]["filtered"]) == [
        ("剧透", "warn")
    ]
    nested = home[str(boosted.id)]["reblog"]
    assert nested["id"] == str(quote.id) and nested["filtered"] == []
    assert _titles(nested["quote"]["quoted_status"]["filtered"]) == [("剧透", "warn")]
    alone = reader.get(f"/api/v1/statuses/{quote.id}").json()
    assert alone["filtered"] == [] and _titles(alone["quote"]["quoted_status"]["filtered"]) == [
        ("剧透", "warn")
    ]
    # A quote is not left out for what it quotes: its reader's client hides the quoted status.
    account = reader.get(f"/api/v1/accounts/{outsider.pk}/statuses").json()
    assert [status["id"] for status in account] == [str(quote.id)]  # the plain repost reads as the original
    assert _titles(account[0]["quote"]["quoted_status"]["filtered"]) == [("不看剧透", "hide")]

    # Another reader of the same statuses (the same kept renderings) sees none of those matches.
    others = {status["id"]: status for status in api_as(merchant).get("/api/v1/timelines/home").json()}
    assert others[str(quote.id)]["quote"]["quoted_status"]["filtered"] == []
    assert others[str(boosted.id)]["reblog"]["quote"]["quoted_status"]["filtered"] == []


def test_a_status_read_by_id_is_marked_by_the_thread_filters_and_never_left_out(
    api_as: Any, shopper: Any, merchant: Any
) -> None:
    ad = post_create(author=merchant, text="全场 SALE 五折")
    spoiler = post_create(author=merchant, text="剧透：明天上新")
    quiet = post_create(author=merchant, text="今天天气不错")
    reader = api_as(shopper)
    assert reader.get(f"/api/v1/statuses/{ad.id}").json()["filtered"] == []
    _filter(reader, "ads", "sale", ["thread"], action="hide")
    _filter(reader, "剧透", "剧透", ["home"])  # home only: not read on a status by itself

    one = reader.get(f"/api/v1/statuses/{ad.id}")
    assert one.status_code == 200 and _titles(one.json()["filtered"]) == [("ads", "hide")]
    assert one.json()["filtered"][0]["keyword_matches"] == ["sale"]
    assert reader.get(f"/api/v1/statuses/{spoiler.id}").json()["filtered"] == []
    several = reader.get(f"/api/v1/statuses?id[]={ad.id}&id[]={spoiler.id}&id[]={quiet.id}").json()
    assert [(status["id"], _titles(status["filtered"])) for status in several] == [
        (str(ad.id), [("ads", "hide")]),
        (str(spoiler.id), []),
        (str(quiet.id), []),
    ]
    # What an action answers is the status as its reader sees it, filters and all.
    liked = reader.post(f"/api/v1/statuses/{ad.id}/favourite")
    assert liked.json()["favourited"] is True and _titles(liked.json()["filtered"]) == [("ads", "hide")]
    # Nobody else's filters apply.
    assert api_as(merchant).get(f"/api/v1/statuses/{ad.id}").json()["filtered"] == []


def test_grouped_notifications_carry_filtered_and_leave_hidden_groups_out(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    spoiler = post_create(author=shopper, text="剧透：结局反转")
    ad = post_create(author=shopper, text="转让 SALE 门票")
    quiet = post_create(author=shopper, text="周末去哪")
    for post in (spoiler, ad, quiet):
        like_add(user=merchant, post_id=post.id)
        like_add(user=outsider, post_id=post.id)
    reader = api_as(shopper)
    _filter(reader, "剧透", "剧透", ["notifications"])
    _filter(reader, "ads", "sale", ["notifications"], action="hide")

    grouped = reader.get("/api/v2/notifications").json()
    assert [group["status_id"] for group in grouped["notification_groups"]] == [
        str(quiet.id),
        str(spoiler.id),
    ]
    statuses = {status["id"]: status for status in grouped["statuses"]}
    assert set(statuses) == {str(quiet.id), str(spoiler.id)}
    assert _titles(statuses[str(spoiler.id)]["filtered"]) == [("剧透", "warn")]
    assert statuses[str(quiet.id)]["filtered"] == []
    assert {account["id"] for account in grouped["accounts"]} == {str(merchant.pk), str(outsider.pk)}

    # A group asked for by its key is marked, not left out; so is one notification asked for by id.
    v1 = reader.get("/api/v1/notifications?exclude_types[]=mention").json()
    assert {note["status"]["id"] for note in v1} == {str(quiet.id), str(spoiler.id)}
    row = Notification.objects.filter(recipient=shopper, post_id=ad.id).order_by("-id").first()
    assert row is not None
    one_group = reader.get(f"/api/v2/notifications/{group_key(row)}").json()
    assert [status["id"] for status in one_group["statuses"]] == [str(ad.id)]
    assert _titles(one_group["statuses"][0]["filtered"]) == [("ads", "hide")]
    one = reader.get(f"/api/v1/notifications/{row.id}").json()
    assert one["status"]["id"] == str(ad.id) and _titles(one["status"]["filtered"]) == [("ads", "hide")]
