"""The filters of an account's posts (plain reposts, a topic, images) and of a topic's timeline (any, all
and none of other topics, images), as Mastodon's parameters ask for them."""

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.microblog.services.media import media_upload
from weituan.microblog.timelines.queries import topic_timeline_ids, user_timeline_ids

pytestmark = pytest.mark.django_db


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 10, 10)).save(buffer, "PNG")
    return SimpleUploadedFile("pic.png", buffer.getvalue(), content_type="image/png")


def test_an_accounts_posts_without_plain_reposts_keep_its_quotes(
    shopper: Any, merchant: Any, post_as: Any, repost_as: Any
) -> None:
    first, second = post_as(merchant, "一号团"), post_as(merchant, "二号团")
    plain = repost_as(shopper, first)
    quote = repost_as(shopper, second, "一起拼")
    own = post_as(shopper, "我的")
    assert user_timeline_ids(shopper.pk, viewer_id=None) == [own.id, quote.id, plain.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, exclude_reblogs=True) == [own.id, quote.id]


def test_an_accounts_posts_with_a_topic(shopper: Any, merchant: Any, post_as: Any, repost_as: Any) -> None:
    deal = post_as(merchant, "今晚 #双十一# 开抢")
    weibo = post_as(shopper, "我也要 #双十一# 冲")
    twitter = post_as(shopper, "hello #Deal")
    post_as(shopper, "没有话题")
    plain = repost_as(shopper, deal)  # a plain repost uses no topic of its own
    quote = repost_as(shopper, deal, "来 #deal")
    assert user_timeline_ids(shopper.pk, viewer_id=None, tagged="双十一") == [weibo.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, tagged="#DEAL") == [quote.id, twitter.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, tagged="deal", max_id=quote.id) == [twitter.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, tagged="没人用过") == []
    assert plain.id in user_timeline_ids(shopper.pk, viewer_id=None, tagged="")


def test_a_topic_timeline_with_any_all_and_none(shopper: Any, merchant: Any, post_as: Any) -> None:
    both = post_as(merchant, "#团购# 和 #拼团#")
    deal_only = post_as(merchant, "只有 #团购#")
    team_only = post_as(shopper, "只有 #拼团#")
    flash = post_as(shopper, "#团购# #秒杀# 抢")
    other = post_as(shopper, "#别的#")

    def topic(name: str, **filters: Any) -> list[int]:
        return topic_timeline_ids(name, viewer_id=None, **filters)

    assert topic("团购") == [flash.id, deal_only.id, both.id]
    assert topic("团购", any_of=["拼团"]) == [flash.id, team_only.id, deal_only.id, both.id]
    assert topic("团购", any_of=["#拼团#", "没人用过"]) == [flash.id, team_only.id, deal_only.id, both.id]
    assert topic("团购", all_of=["拼团"]) == [both.id]
    assert topic("团购", none_of=["秒杀", "拼团"]) == [deal_only.id]
    assert topic("团购", none_of=["没人用过"]) == [flash.id, deal_only.id, both.id]
    assert topic("团购", any_of=["拼团"], none_of=["秒杀"], all_of=["团购"]) == [deal_only.id, both.id]
    # No post can use a topic nobody ever used; a timeline of one answers nothing whatever else is asked.
    assert topic("团购", all_of=["没人用过"]) == []
    assert topic("没人用过", any_of=["团购"]) == []
    # Only the first four of each are read, as Mastodon reads them.
    assert topic("别的", any_of=["a", "b", "c", "d", "团购"]) == [other.id]
    assert topic("团购", any_of=["拼团"], max_id=team_only.id) == [deal_only.id, both.id]


def test_a_topic_timeline_with_images_only(shopper: Any, post_as: Any) -> None:
    image = media_upload(owner=shopper, upload=_png())
    pictured = post_as(shopper, "看图 #团购#", media_ids=[image.id])
    post_as(shopper, "没图 #团购#")
    assert topic_timeline_ids("团购", viewer_id=None, only_media=True) == [pictured.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, only_media=True) == [pictured.id]
