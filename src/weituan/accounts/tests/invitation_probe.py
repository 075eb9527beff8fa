"""Invitation handlers for the tests of accounts.invites: one that keeps what it is handed, one that fails."""

from weituan.accounts.invites import Invitation

received: list[Invitation] = []


def keep(invitation: Invitation) -> None:
    received.append(invitation)


def fail(invitation: Invitation) -> None:
    raise RuntimeError("this handler is broken")
