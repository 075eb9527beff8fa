"""Postings to the double-entry ledger. Every posting balances to zero; nothing is ever updated or deleted."""

from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Sum

from weituan.deals.models import Account, AccountKind, Entry, Order, Posting


class UnbalancedPosting(AssertionError):
    """A posting whose entries do not sum to zero: a programming error, never a user error."""


def account_get(*, kind: str, currency: str, owner_id: int | None = None, name: str = "") -> Account:
    """The account of that identity, created on first use (concurrent first uses create one row)."""
    identity = f"{kind}:{owner_id if owner_id is not None else name}:{currency}"
    account = Account.objects.filter(identity=identity).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return Account.objects.create(
                kind=kind, owner_id=owner_id, name=name, currency=currency, identity=identity
            )
    except IntegrityError:
        return Account.objects.get(identity=identity)


def wallet_account(user_id: int, currency: str) -> Account:
    return account_get(kind=AccountKind.WALLET, currency=currency, owner_id=user_id)


def held_account(user_id: int, currency: str) -> Account:
    return account_get(kind=AccountKind.HELD, currency=currency, owner_id=user_id)


def merchant_account(user_id: int, currency: str) -> Account:
    return account_get(kind=AccountKind.MERCHANT_PAYABLE, currency=currency, owner_id=user_id)


def platform_fee_account(currency: str) -> Account:
    return account_get(kind=AccountKind.PLATFORM_FEE, currency=currency, name="platform")


def gateway_account(gateway: str, currency: str) -> Account:
    return account_get(kind=AccountKind.GATEWAY, currency=currency, name=gateway)


def promotions_account(currency: str) -> Account:
    return account_get(kind=AccountKind.PROMOTIONS, currency=currency, name="referrals")


def posting_write(
    *,
    kind: str,
    key: str,
    lines: Iterable[tuple[Account, int]],
    order: Order | None = None,
    memo: str = "",
) -> Posting | None:
    """Write one balanced posting under the unique `key`; returns None if that key was already posted.

    Call inside the transaction that also moves the state the posting belongs to, so both land or
    neither does.
    """
    entries = [(account, amount) for account, amount in lines if amount != 0]
    per_currency: dict[str, int] = defaultdict(int)
    for account, amount in entries:
        if not isinstance(amount, int):
            raise UnbalancedPosting(f"posting {key}: amount {amount!r} is not integer minor units")
        per_currency[account.currency] += amount
    if any(total != 0 for total in per_currency.values()) or not entries:
        raise UnbalancedPosting(f"posting {key} does not balance: {dict(per_currency)}")
    try:
        with transaction.atomic():
            posting = Posting.objects.create(kind=kind, key=key, order=order, memo=memo[:200])
    except IntegrityError:
        return None
    Entry.objects.bulk_create(
        [Entry(posting=posting, account=account, amount=amount) for account, amount in entries]
    )
    return posting


def balance_of(account: Account) -> int:
    return int(Entry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0)


def balance_locked(account: Account) -> int:
    """The balance while holding the account row's lock, so two spends cannot both see the same money."""
    Account.objects.select_for_update().filter(pk=account.pk).first()
    return balance_of(account)
