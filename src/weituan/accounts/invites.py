"""Invite links: who brought a person to Weituan, handed on when they sign up or log in.

A friend's invite link is /invite/<username>; the last part of it is the invite code, as the last part
of a Mastodon invite link is (so a Mastodon client registering with `invite_code` sends that name).
A signed-out visitor's session keeps the inviter until they sign up or log in.

Accounts sits below every other app and never calls up into them. What an invitation earns (deals:
the referral credit) is named in the ACCOUNTS_INVITATION_HANDLERS setting, as Django names its
authentication backends, and each handler is called with the `Invitation`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from weituan.accounts.models import User

logger = logging.getLogger(__name__)

INVITER_SESSION_KEY = "invited_by"  # the id of the user whose invite link this browser followed


@dataclass(frozen=True)
class Invitation:
    """`invitee` followed `inviter_id`'s invite link; `new_account` when they signed up through it
    (else an account that already existed logged in)."""

    inviter_id: int
    invitee: User
    new_account: bool


def inviter_by_code(code: str | None) -> User | None:
    """The active user whose invite code (their username, any case) this is; None for an unknown code."""
    name = (code or "").strip().lstrip("@")
    if not name:
        return None
    return User.objects.filter(username__iexact=name, is_active=True).first()


def inviter_remember(session: Any, *, inviter_id: int) -> None:
    """Keep the inviter of a signed-out visitor until they sign up or log in. The first invite a
    browser followed is the one that counts, as the first invite of an account is."""
    session.setdefault(INVITER_SESSION_KEY, inviter_id)


def invitation_accept(*, inviter_id: int | None, invitee: User, new_account: bool) -> None:
    """Hand an invitation to each handler of ACCOUNTS_INVITATION_HANDLERS. Nobody invites themselves,
    and an inviter who is gone invites nobody. A handler that fails is logged and never stops the
    sign-up or log-in it came with: the account is made either way."""
    if inviter_id is None or inviter_id == invitee.pk:
        return
    if not User.objects.filter(pk=inviter_id, is_active=True).exists():
        return
    invitation = Invitation(inviter_id=inviter_id, invitee=invitee, new_account=new_account)
    for path in settings.ACCOUNTS_INVITATION_HANDLERS:
        handler: Callable[[Invitation], object] = import_string(path)
        try:
            handler(invitation)
        except Exception:
            logger.exception("invitation of user %s by %s: %s failed", invitee.pk, inviter_id, path)


def invitation_accept_from_session(session: Any, *, invitee: User, new_account: bool) -> None:
    """The invitation a browser brought (if any), now that `invitee` signed up or logged in; it is
    used once."""
    raw = session.pop(INVITER_SESSION_KEY, None)
    try:
        inviter_id = int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return
    invitation_accept(inviter_id=inviter_id, invitee=invitee, new_account=new_account)
