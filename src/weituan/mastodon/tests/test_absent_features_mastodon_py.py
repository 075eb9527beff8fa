"""The reads a Mastodon client makes as it starts, of features Weituan does not have (custom emoji,
filters, announcements, followed hashtags, server rules) and as it opens a profile
(featured hashtags and accounts), through the real Mastodon.py
against a live server: each answers an empty list, not a 404 the client would show as an error."""

from typing import Any

import pytest
from mastodon.errors import MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_startup_reads_of_absent_features_answer_empty_lists(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan startup")
    assert fan.custom_emojis() == []
    assert fan.filters() == []
    assert fan.filters_v2() == []
    assert fan.announcements() == []
    assert fan.followed_tags() == []
    assert fan.instance_rules() == []
    assert fan.conversations() == []
    assert fan.scheduled_statuses() == []
    assert fan.domain_blocks() == []
    assert fan.instance().rules == []
    # What a client reads as it opens a profile.
    shop_id = shop.account_verify_credentials().id
    assert fan.account_featured_tags(shop_id) == []
    assert fan.featured_tags() == []
    assert fan.endorsements() == []
    with pytest.raises(MastodonNotFoundError):
        fan.account_featured_tags(999999)
