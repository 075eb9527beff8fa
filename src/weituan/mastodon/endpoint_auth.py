"""Who may call each Mastodon endpoint, with the OAuth scopes Mastodon asks of a token there.

Reads of public things (statuses, accounts, search) let anonymous callers in, but a token that is sent
must carry the scope; everything else needs a user.
"""

from weituan.accounts.auth import scoped_auth

READ_STATUSES = scoped_auth("read", "read:statuses", anonymous=True)
READ_ACCOUNTS = scoped_auth("read", "read:accounts", anonymous=True)
READ_SEARCH = scoped_auth("read", "read:search", anonymous=True)
READ_FOLLOWS = scoped_auth("read", "follow", "read:follows")
READ_NOTIFICATIONS = scoped_auth("read", "read:notifications")
# An account read that needs a user (suggestions are for someone).
READ_ACCOUNTS_USER = scoped_auth("read", "read:accounts")
READ_OWN_ACCOUNT = scoped_auth("profile", "read", "read:accounts")
READ_BLOCKS = scoped_auth("read", "follow", "read:blocks")
READ_MUTES = scoped_auth("read", "follow", "read:mutes")
READ_FAVOURITES = scoped_auth("read", "read:favourites")
READ_BOOKMARKS = scoped_auth("read", "read:bookmarks")
READ_MARKERS = scoped_auth("read", "read:statuses")
READ_LISTS = scoped_auth("read", "read:lists")
WRITE_STATUSES = scoped_auth("write", "write:statuses")
WRITE_FAVOURITES = scoped_auth("write", "write:favourites")
WRITE_BOOKMARKS = scoped_auth("write", "write:bookmarks")
WRITE_MEDIA = scoped_auth("write", "write:media")
WRITE_NOTIFICATIONS = scoped_auth("write", "write:notifications")
WRITE_ACCOUNTS = scoped_auth("write", "write:accounts")
WRITE_MARKERS = scoped_auth("write", "write:statuses")
WRITE_LISTS = scoped_auth("write", "write:lists")
WRITE_FOLLOWS = scoped_auth("write", "follow", "write:follows")
WRITE_BLOCKS = scoped_auth("write", "follow", "write:blocks")
WRITE_MUTES = scoped_auth("write", "follow", "write:mutes")
# Trends are public: any token, or none, will do.
ANY_TOKEN = scoped_auth(anonymous=True)
