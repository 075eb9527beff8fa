"""Profile bios as HTML: escaped and linkified as post text is, an @name a link only to an account that exists.

A bio is rendered when it is read, as Mastodon renders an account's note: its @names are looked up
then (one query for a page of accounts), so a bio naming an account made later links to it from then
on, and one naming an account since deactivated no longer does. The home timeline keeps its statuses
rendered, each with its author's account, until one of the rows they show changes: a bio edit shows
on the next read, but an account created later is linked there only once the status is rendered
again. A bio's @names are not mentions: nobody is notified of them.
"""

from collections.abc import Iterable
from typing import Any

from weituan.accounts.queries import users_by_usernames
from weituan.microblog.text import extract_mentions, render_html

# Set on a user by `bio_mentions_preload`: (the bio the names were looked up for, the names found).
_PRELOADED = "_weituan_bio_mentions"


def _named(bio: str) -> list[str]:
    return extract_mentions(bio) if "@" in bio else []


def bio_mentions_preload(users: Iterable[Any]) -> None:
    """Look up, in one query (none when no bio names anyone), the accounts the @names of these users'
    bios stand for, so that rendering their bios (`bio_html_of`) reads nothing more."""
    people = [user for user in users if not _preloaded_for(user)]
    wanted = {name for user in people for name in _named(user.bio)}
    found = frozenset(users_by_usernames(wanted)) if wanted else frozenset()
    for user in people:
        named = {name.lower() for name in _named(user.bio)}
        setattr(user, _PRELOADED, (user.bio, found & named))


def _preloaded_for(user: Any) -> bool:
    kept = getattr(user, _PRELOADED, None)
    return kept is not None and kept[0] == user.bio


def bio_html_of(user: Any, *, base_url: str = "") -> str:
    """`user`'s bio as HTML paragraphs (`render_html`): links, #topics# and the @names of active
    accounts linkified, everything else escaped. `base_url` is put before the paths of mention and
    topic links (empty for pages of this site, the site URL for the API). Reads the accounts named
    unless `bio_mentions_preload` did."""
    if not _preloaded_for(user):
        bio_mentions_preload([user])
    known: frozenset[str] = getattr(user, _PRELOADED)[1]
    return render_html(user.bio, base_url=base_url, mentions=known)
