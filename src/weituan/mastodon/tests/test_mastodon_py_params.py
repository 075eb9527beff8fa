"""Mastodon's request parameters, through the real Mastodon.py against a live server: an account's
statuses filtered (tagged, exclude_reblogs, only_media, pinned, exclude_replies), a tag timeline widened
and narrowed (any[], all[], none[], local, remote, only_media), a follow without reblogs, and the
streaming that is not offered."""

import io
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonNetworkError, MastodonServerError
from PIL import Image

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import PASSWORD, SCOPES, shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def _people(live_server: Any) -> tuple[Mastodon, Mastodon]:
    return shop_and_newcomer(live_server, "Weituan params")


def _ids(statuses: Any) -> list[Any]:
    return [status.id for status in statuses]


def _png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def test_an_accounts_statuses_filtered(live_server: Any, merchant: User, outsider: User) -> None:
    shop, fan = _people(live_server)
    deal = shop.status_post("今晚 #双十一# 开抢")
    other = shop.status_post("明天 #拼团#")
    me = fan.account_verify_credentials()
    plain = fan.status_reblog(deal.id)
    quoted = fan.status_post("一起拼 #拼团#", quoted_status_id=other.id)
    picture = fan.media_post(_png(), mime_type="image/png", description="团购券")
    pictured = fan.status_post("晒单 #双十一#", media_ids=[picture.id])
    fan.status_post("评论一下", in_reply_to_id=deal.id)  # a comment: never among an account's posts

    assert _ids(fan.account_statuses(me.id)) == [pictured.id, quoted.id, plain.id]
    assert fan.account_statuses(me.id)[2].reblog.id == deal.id
    # A quote says something of its own: Mastodon keeps it among the statuses without reblogs.
    assert _ids(fan.account_statuses(me.id, exclude_reblogs=True)) == [pictured.id, quoted.id]
    assert _ids(fan.account_statuses(me.id, tagged="双十一")) == [pictured.id]
    assert _ids(fan.account_statuses(me.id, tagged="拼团", exclude_reblogs=True)) == [quoted.id]
    assert fan.account_statuses(me.id, tagged="没人用过") == []
    assert _ids(fan.account_statuses(me.id, only_media=True)) == [pictured.id]
    assert _ids(fan.account_statuses(me.id, exclude_replies=True)) == [pictured.id, quoted.id, plain.id]
    assert fan.account_statuses(me.id, pinned=True) == []


def test_a_tag_timeline_widened_and_narrowed(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    both = shop.status_post("#团购# 和 #拼团#")
    deal_only = shop.status_post("只有 #团购#")
    team_only = fan.status_post("只有 #拼团#")
    flash = fan.status_post("#团购# #秒杀# 抢")
    picture = fan.media_post(_png(), mime_type="image/png")
    pictured = fan.status_post("看图 #团购#", media_ids=[picture.id])

    def tag(name: str, **lists: list[str]) -> list[Any]:
        # Mastodon.py has no arguments for any[], all[] and none[]; its timeline() takes them in the
        # path's query string, as its own timeline_link() passes a URL.
        query = urlencode([(f"{mode}[]", value) for mode, values in lists.items() for value in values])
        return _ids(fan.timeline(f"tag/{quote(name)}" + (f"?{query}" if query else "")))

    assert _ids(fan.timeline_hashtag("团购")) == [pictured.id, flash.id, deal_only.id, both.id]
    assert tag("团购", any=["拼团"]) == [pictured.id, flash.id, team_only.id, deal_only.id, both.id]
    assert tag("团购", all=["拼团"]) == [both.id]
    assert tag("团购", none=["秒杀", "拼团"]) == [pictured.id, deal_only.id]
    assert tag("拼团", any=["秒杀"], none=["团购"]) == [team_only.id]
    assert tag("团购", all=["没人用过"]) == []
    assert _ids(fan.timeline_hashtag("团购", only_media=True)) == [pictured.id]
    assert _ids(fan.timeline_hashtag("团购", local=True)) == [pictured.id, flash.id, deal_only.id, both.id]
    assert fan.timeline_hashtag("团购", remote=True) == []


def test_a_follow_without_reblogs(live_server: Any, merchant: User, outsider: User) -> None:
    shop, fan = _people(live_server)
    shop_id = fan.account_lookup("meituan_shop").id
    relationship = fan.account_follow(shop_id, reblogs=False)
    assert (relationship.following, relationship.showing_reblogs) == (True, False)
    assert fan.account_relationships([shop_id])[0].showing_reblogs is False
    fan.timeline_home()  # the newcomer reads their home timeline, so fan-out keeps it

    passer_app = Mastodon.create_app("Weituan passer", scopes=SCOPES, api_base_url=live_server.url)
    passer = Mastodon(
        client_id=passer_app[0],
        client_secret=passer_app[1],
        api_base_url=live_server.url,
        version_check_mode="created",
    )
    passer.log_in("charlie", PASSWORD, scopes=SCOPES, allow_http=True)
    first, second = passer.status_post("一号团"), passer.status_post("二号团")
    plain = shop.status_reblog(first.id)
    quoted = shop.status_post("这家不错", quoted_status_id=second.id)
    own = shop.status_post("本店新品")
    assert _ids(fan.timeline_home()) == [own.id, quoted.id]

    # Following again with reblogs=true turns them back on, for the reblog already made too.
    relationship = fan.account_follow(shop_id, reblogs=True)
    assert (relationship.following, relationship.showing_reblogs) == (True, True)
    assert _ids(fan.timeline_home()) == [own.id, quoted.id, plain.id]
    assert fan.account_verify_credentials().following_count == 1

    relationship = fan.account_follow(shop_id, reblogs=False)
    assert relationship.showing_reblogs is False
    assert _ids(fan.timeline_home()) == [own.id, quoted.id]


def test_streaming_is_refused_plainly(live_server: Any, merchant: User) -> None:
    _shop, fan = _people(live_server)
    streaming = fan.instance_v2().configuration.urls.streaming
    assert streaming == live_server.url.replace("http://", "ws://")
    assert fan.instance_v1().urls.streaming_api == streaming
    with pytest.raises(MastodonServerError) as refused:
        fan.stream_healthy()
    assert refused.value.args[1] == 501
    with pytest.raises(MastodonNetworkError, match="Not Implemented"):
        fan.stream_user(listener=None)
    fan.session.close()  # the refused stream's connection, which Mastodon.py leaves open
