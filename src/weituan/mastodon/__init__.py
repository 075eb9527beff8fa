"""The Mastodon client API (the subset a client needs), so existing Mastodon apps work with Weituan."""
