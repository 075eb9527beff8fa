"""The reads a Mastodon client makes as it starts, of features Weituan does not have (custom emoji,
filters, lists, announcements, followed hashtags, bookmarks, server rules), through the real Mastodon.py
against a live server: each answers an empty list, not a 404 the client would show as an error."""

from typing import Any

import pytest

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_startup_reads_of_absent_features_answer_empty_lists(live_server: Any, merchant: User) -> None:
    _shop, fan = shop_and_newcomer(live_server, "Weituan startup")
    assert fan.custom_emojis() == []
    assert fan.filters() == []
    assert fan.filters_v2() == []
    assert fan.lists() == []
    assert fan.announcements() == []
    assert fan.followed_tags() == []
    assert fan.bookmarks() == []
    assert fan.instance_rules() == []
    assert fan.instance().rules == []
