"""What a Mastodon client meets at the edges of the API, through the real Mastodon.py against a live
server: endpoints Weituan does not offer, and errors a client must be able to read."""

from typing import Any

import pytest
from mastodon import MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_endpoint_weituan_does_not_offer_is_a_404_the_client_reads(
    live_server: Any, merchant: User
) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edges")
    post = shop.status_post("今晚八点开团")
    # Bookmarks and pins are not offered; the client is told so in the API's words, not with a page.
    with pytest.raises(MastodonNotFoundError) as refused:
        fan.status_bookmark(post.id)
    assert refused.value.args[1:] == (404, "Not Found", "Record not found")
    with pytest.raises(MastodonNotFoundError):
        shop.status_pin(post.id)
