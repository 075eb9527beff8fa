"""Keyword filters through the real Mastodon.py against a live server (its home timeline answered by
the path in front of Django for a reader without filters): v2 and v1 filters made, changed and removed
as a client does, and the home timeline filtered and folded for the reader who made them."""

from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import KeywordFilter

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_reader_filters_their_home_timeline_with_mastodon_py(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan filters")
    fan.account_follow(shop.account_verify_credentials().id)
    spoiler = shop.status_post("大结局剧透：凶手是管家")
    ad = shop.status_post("Flash SALE tonight")
    wholesale = shop.status_post("wholesale only")
    before = fan.timeline_home()
    assert [status.id for status in before] == [wholesale.id, ad.id, spoiler.id]
    assert all(status.filtered == [] for status in before)

    warn = fan.create_filter_v2(
        "剧透", ["home", "thread"], "warn", keywords_attributes=[{"keyword": "剧透", "whole_word": False}]
    )
    assert (warn.title, warn.context, warn.filter_action) == ("剧透", ["home", "thread"], "warn")
    assert [(k.keyword, k.whole_word) for k in warn.keywords] == [("剧透", False)]
    hide = fan.create_filter_v2(
        "ads", ["home"], "hide", expires_in=3600, keywords_attributes=[{"keyword": "sale"}]
    )
    assert hide.expires_at is not None

    home = fan.timeline_home()
    assert [status.id for status in home] == [wholesale.id, spoiler.id]
    (result,) = home[1].filtered
    assert (result.filter.id, result.filter.title, result.keyword_matches) == (warn.id, "剧透", ["剧透"])
    assert home[0].filtered == []
    # The author reads their own home unfiltered (the filters are the reader's).
    assert [status.id for status in shop.timeline_home()] == [wholesale.id, ad.id, spoiler.id]

    keyword = fan.add_filter_keyword_v2(warn.id, "管家", whole_word=False)
    assert [k.keyword for k in fan.filter_keywords_v2(warn.id)] == ["剧透", "管家"]
    fan.delete_filter_keyword_v2(keyword.id)
    assert [k.keyword for k in fan.filter_v2(warn.id).keywords] == ["剧透"]
    changed = fan.update_filter_v2(
        hide.id, context=["public"], keywords_attributes=[{"keyword": "wholesale"}]
    )
    assert changed.context == ["public"] and [k.keyword for k in changed.keywords] == ["sale", "wholesale"]
    assert [status.id for status in fan.timeline_home()] == [wholesale.id, ad.id, spoiler.id]

    status_filter = fan.add_filter_status_v2(warn.id, ad.id)
    assert fan.filter_statuses_v2(warn.id)[0].status_id == ad.id
    assert fan.filter_status_v2(status_filter.id).id == status_filter.id
    by_status = {status.id: status for status in fan.timeline_home()}[ad.id].filtered[0]
    assert by_status.status_matches == [ad.id] and by_status.keyword_matches is None
    fan.delete_filter_status_v2(status_filter.id)

    with pytest.raises(MastodonNotFoundError):
        shop.filter_v2(warn.id)  # someone else's
    with pytest.raises(MastodonAPIError) as refused:
        fan.create_filter_v2("x", ["everywhere"], "warn")
    assert refused.value.args[1] == 422
    fan.delete_filter_v2(hide.id)
    fan.delete_filter_v2(warn.id)
    assert fan.filters_v2() == [] and not KeywordFilter.objects.exists()
    assert [status.filtered for status in fan.timeline_home()] == [[], [], []]


def test_v1_filters_with_mastodon_py(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan filters")
    made = fan.filter_create("广告", ["home", "public"], irreversible=True, whole_word=False)
    assert (made.phrase, made.context, made.irreversible, made.whole_word) == (
        "广告",
        ["home", "public"],
        True,
        False,
    )
    assert [f.phrase for f in fan.filters()] == ["广告"]
    assert fan.filter(made.id).phrase == "广告"
    changed = fan.filter_update(made.id, phrase="推广", context=["home"], irreversible=False)
    assert (changed.phrase, changed.context, changed.irreversible) == ("推广", ["home"], False)
    assert fan.filters_v2()[0].filter_action == "warn"
    shop.status_post("新品推广")
    fan.account_follow(shop.account_verify_credentials().id)
    assert fan.timeline_home()[0].filtered[0].keyword_matches == ["推广"]
    fan.filter_delete(made.id)
    assert fan.filters() == [] and fan.filters_v2() == []
