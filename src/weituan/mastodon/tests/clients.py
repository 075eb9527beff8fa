"""Real Mastodon.py clients against a live server, for the tests that walk the API as a client does."""

from typing import Any

from mastodon import Mastodon

PASSWORD = "correct horse battery"  # the persona fixtures' password
SCOPES = ["read", "write", "follow"]


def shop_and_newcomer(live_server: Any, app_name: str) -> tuple[Mastodon, Mastodon]:
    """The merchant persona (signed in) and a newcomer, xiaoming (signed up), as clients of one app."""
    app = Mastodon.create_app(app_name, scopes=SCOPES, api_base_url=live_server.url)

    def client() -> Mastodon:
        return Mastodon(
            client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="created"
        )

    shop, fan = client(), client()
    shop.log_in("meituan_shop", PASSWORD, scopes=SCOPES, allow_http=True)
    fan.create_account(
        "xiaoming", "a long passphrase", "xiaoming@example.test", agreement=True, scopes=SCOPES
    )
    return shop, fan
