"""Notifications: who is told what, Mastodon types and filters, unread counts, dismiss, clear, markers."""

import pytest

from weituan.core.errors import NotFound
from weituan.microblog.models import Block, Mute, Notification
from weituan.microblog.queries.notifications import notifications_page, notifications_unread_count
from weituan.microblog.services.interactions import comment_create, like_add
from weituan.microblog.services.notifications import (
    notification_create,
    notification_dismiss,
    notifications_mark_read,
)
from weituan.microblog.services.posts import post_create, repost_create


@pytest.fixture
def original(merchant):
    return post_create(author=merchant, text="新品上架")


def test_nobody_is_notified_of_their_own_actions_or_by_blocked_and_muted_accounts(
    shopper, merchant, outsider
):
    assert notification_create(recipient_id=shopper.pk, actor_id=shopper.pk, kind="follow") is None
    Block.objects.create(blocker=shopper, blocked=outsider)
    assert notification_create(recipient_id=shopper.pk, actor_id=outsider.pk, kind="follow") is None
    assert notification_create(recipient_id=outsider.pk, actor_id=shopper.pk, kind="follow") is None
    Mute.objects.create(muter=shopper, muted=merchant)
    assert notification_create(recipient_id=shopper.pk, actor_id=merchant.pk, kind="follow") is None
    assert notification_create(recipient_id=merchant.pk, actor_id=shopper.pk, kind="follow") is not None
    assert notification_create(recipient_id=merchant.pk, actor_id=shopper.pk, kind="follow") is None  # once
    assert Notification.objects.count() == 1


def test_unread_counts_and_marking_read(shopper, merchant, outsider, original):
    like_add(user=shopper, post_id=original.id)
    first = comment_create(author=outsider, post_id=original.id, text="hi")
    repost_create(reposter=shopper, post_id=original.id)
    assert notifications_unread_count(merchant) == 3
    up_to = Notification.objects.get(post=first).id
    assert notifications_mark_read(user_id=merchant.pk, up_to_id=up_to) == 2
    assert notifications_unread_count(merchant) == 1
    assert notifications_mark_read(user_id=merchant.pk) == 1
    assert notifications_unread_count(merchant) == 0


def test_types_filter_maps_weibo_kinds_to_mastodon_types(shopper, merchant, outsider, original):
    like_add(user=shopper, post_id=original.id)
    comment_create(author=outsider, post_id=original.id, text="评论")
    repost_create(reposter=shopper, post_id=original.id)
    repost_create(reposter=outsider, post_id=original.id, comment="带评论")
    post_create(author=shopper, text="@meituan_shop 你好")

    def kinds(**filters):
        return [row.kind for row in notifications_page(merchant, **filters)]

    assert kinds(types=["mention"]) == ["mention", "comment"]
    assert kinds(types=["reblog"]) == ["repost"]
    assert kinds(types=["quote"]) == ["repost"]
    assert kinds(types=["favourite"]) == ["like"]
    assert len(kinds(exclude_types=["mention", "favourite"])) == 2
    assert len(kinds(account_id=outsider.pk)) == 2
    Block.objects.create(blocker=merchant, blocked=outsider)
    assert len(kinds()) == 3


def test_dismissing_someone_elses_notification_is_not_found(shopper, merchant, original):
    like_add(user=shopper, post_id=original.id)
    row = Notification.objects.get()
    with pytest.raises(NotFound):
        notification_dismiss(user_id=shopper.pk, notification_id=row.id)
    notification_dismiss(user_id=merchant.pk, notification_id=row.id)
    assert Notification.objects.count() == 0


def test_the_notifications_api(api_as, shopper, merchant, outsider, original):
    like_add(user=shopper, post_id=original.id)
    repost = repost_create(reposter=outsider, post_id=original.id)
    quote = repost_create(reposter=shopper, post_id=original.id, comment="推荐")
    client = api_as(merchant)

    listed = client.get("/api/v1/notifications")
    assert listed.status_code == 200
    items = listed.json()
    assert [item["type"] for item in items] == ["quote", "reblog", "favourite"]
    assert items[0]["status"]["id"] == str(quote.id)
    assert items[1]["status"]["id"] == str(original.id)  # a reblog shows the post that was reblogged
    assert items[1]["account"]["username"] == "charlie"
    assert items[2]["status"]["favourites_count"] == 1
    assert 'rel="next"' in listed["Link"]
    assert Notification.objects.get(kind="repost", actor=outsider).post_id == repost.id

    only = client.get("/api/v1/notifications?types[]=reblog&types[]=favourite").json()
    assert [item["type"] for item in only] == ["reblog", "favourite"]
    assert client.get("/api/v1/notifications/unread_count").json() == {"count": 3}
    assert client.get("/api/v1/weituan/notifications/unread_count").json() == {"count": 3}

    one = client.get(f"/api/v1/notifications/{items[2]['id']}").json()
    assert one["type"] == "favourite"
    assert api_as(shopper).get(f"/api/v1/notifications/{items[2]['id']}").status_code == 404

    marker = client.post("/api/v1/markers", {"notifications[last_read_id]": items[1]["id"]}).json()[
        "notifications"
    ]
    assert marker["last_read_id"] == items[1]["id"]
    assert client.get("/api/v1/notifications/unread_count").json() == {"count": 1}
    assert client.get("/api/v1/markers").json()["notifications"]["last_read_id"] == items[1]["id"]
    read_all = client.post("/api/v1/weituan/notifications/read").json()
    assert read_all == {"marked": 1, "unread": 0}

    assert client.post(f"/api/v1/notifications/{items[0]['id']}/dismiss").status_code == 200
    assert len(client.get("/api/v1/notifications").json()) == 2
    assert client.post("/api/v1/notifications/clear").status_code == 200
    assert client.get("/api/v1/notifications").json() == []


def test_notifications_need_a_token(client):
    assert client.get("/api/v1/notifications").status_code == 401
