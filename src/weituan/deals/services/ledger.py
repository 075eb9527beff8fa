"""Postings to the double-entry ledger. Every posting balances to zero; nothing is ever updated or deleted."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from weituan.deals.models import Account, AccountKind, Entry, Order, Posting
from weituan.deals.services.rows import StatementBatch, rows_insert


class UnbalancedPosting(AssertionError):
    """A posting whose entries do not sum to zero: a programming error, never a user error."""


class AccountRef(NamedTuple):
    """Names an account without reading it: what `account_get` takes."""

    kind: str
    currency: str
    owner_id: int | None = None
    name: str = ""

    @property
    def identity(self) -> str:
        return account_identity(
            kind=self.kind, currency=self.currency, owner_id=self.owner_id, name=self.name
        )


def account_identity(*, kind: str, currency: str, owner_id: int | None = None, name: str = "") -> str:
    return f"{kind}:{owner_id if owner_id is not None else name}:{currency}"


def account_get(*, kind: str, currency: str, owner_id: int | None = None, name: str = "") -> Account:
    """The account of that identity, created on first use (concurrent first uses create one row)."""
    identity = account_identity(kind=kind, currency=currency, owner_id=owner_id, name=name)
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


def wallet_ref(user_id: int, currency: str) -> AccountRef:
    return AccountRef(AccountKind.WALLET, currency, user_id)


def held_ref(user_id: int, currency: str) -> AccountRef:
    return AccountRef(AccountKind.HELD, currency, user_id)


def merchant_ref(user_id: int, currency: str) -> AccountRef:
    return AccountRef(AccountKind.MERCHANT_PAYABLE, currency, user_id)


def platform_fee_ref(currency: str) -> AccountRef:
    return AccountRef(AccountKind.PLATFORM_FEE, currency, None, "platform")


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
    _check_balanced(key, entries)
    try:
        with transaction.atomic():
            posting = Posting.objects.create(kind=kind, key=key, order=order, memo=memo[:200])
    except IntegrityError:
        return None
    Entry.objects.bulk_create(
        [Entry(posting=posting, account=account, amount=amount) for account, amount in entries]
    )
    return posting


def postings_write_new(
    *, order: Order, postings: Iterable[tuple[str, str, Iterable[tuple[Account, int]]]]
) -> None:
    """Write the first postings of an order created in this same transaction: (kind, key, lines) each.

    Their keys name an order id that did not exist before this transaction, so no other posting can
    hold them and the savepoint `posting_write` needs is skipped: one INSERT for the postings, one for
    all their entries.
    """
    rows: list[Posting] = []
    lines_of: list[list[tuple[Account, int]]] = []
    for kind, key, lines in postings:
        entries = [(account, amount) for account, amount in lines if amount != 0]
        _check_balanced(key, entries)
        rows.append(Posting(kind=kind, key=key, order=order))
        lines_of.append(entries)
    if connection.vendor == "postgresql":
        _postings_and_entries_insert(rows, lines_of)
        return
    rows_insert(rows)
    rows_insert(
        [
            Entry(posting=posting, account=account, amount=amount)
            for posting, entries in zip(rows, lines_of, strict=True)
            for account, amount in entries
        ]
    )


def _postings_and_entries_insert(rows: list[Posting], lines_of: list[list[tuple[Account, int]]]) -> None:
    """PostgreSQL: the postings and their entries in one statement (the entries find their posting by
    its unique key), one round trip fewer on every checkout."""
    quote = connection.ops.quote_name
    now = timezone.now()
    posting_marks = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    entry_lines = [(row.key, account.id, amount) for row, entries in zip(rows, lines_of, strict=True)
                   for account, amount in entries]  # fmt: skip
    entry_marks = ", ".join(["(%s, %s::bigint, %s::bigint)"] * len(entry_lines))
    params: list[Any] = []
    for row in rows:
        params += [row.kind, row.key, row.order_id, row.memo, now]
    for line in entry_lines:
        params += list(line)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH p AS (INSERT INTO {quote(Posting._meta.db_table)} (kind, key, order_id, memo, created_at)"  # noqa: S608
            f" VALUES {posting_marks} RETURNING id, key)"
            f" INSERT INTO {quote(Entry._meta.db_table)} (posting_id, account_id, amount)"
            f" SELECT p.id, v.account_id, v.amount FROM (VALUES {entry_marks}) AS v (key, account_id, amount)"
            " JOIN p ON p.key = v.key",
            params,
        )
        if cursor.rowcount != len(entry_lines):
            raise UnbalancedPosting(f"{cursor.rowcount} entries written of {len(entry_lines)}")


def balance_check_send(batch: StatementBatch, *, spend_from: AccountRef, amount: int) -> None:
    """PostgreSQL: lock `spend_from` against concurrent spends and refuse, inside the batch, a spend of
    `amount` its balance does not cover: `weituan_refuse('insufficient_balance <balance>')`, so that
    nothing after it in the batch runs (see `insufficient_balance_of`). The balance is read in a
    statement after the lock's, with a snapshot taken once the lock was granted."""
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    batch.add(f"SELECT id FROM {accounts} WHERE identity = %s FOR UPDATE", [spend_from.identity])  # noqa: S608
    batch.add(
        "SELECT CASE WHEN b.total < %s THEN weituan_refuse('insufficient_balance ' || b.total) END"  # noqa: S608
        f" FROM (SELECT coalesce(SUM(e.amount), 0) AS total FROM {entries} e"
        f" JOIN {accounts} a ON a.id = e.account_id WHERE a.identity = %s) AS b",
        [amount, spend_from.identity],
    )


def insufficient_balance_of(reason: str) -> int | None:
    """The balance a `balance_check_send` refusal reported; None for another reason."""
    kind, _, balance = reason.partition(" ")
    return int(balance) if kind == "insufficient_balance" and balance.lstrip("-").isdigit() else None


def postings_write_new_send(
    batch: StatementBatch,
    *,
    order: Order,
    postings: Iterable[tuple[str, str, Iterable[tuple[AccountRef, int]]]],
    refuse_in_sql: bool = False,
) -> Callable[[], bool]:
    """PostgreSQL: `postings_write_new` with the accounts named, not read: one statement, added to
    `batch`; the returned call says whether it was written. It writes nothing unless every account it names
    exists (the buyer's first order may find one missing: the caller then creates it and writes the
    postings with `postings_write_new`); with `refuse_in_sql` the statement then calls
    `weituan_refuse('accounts_missing')` instead, so that nothing after it in the batch runs."""
    quote = connection.ops.quote_name
    now = timezone.now()
    rows: list[tuple[str, str]] = []
    lines: list[tuple[str, str, int]] = []
    for kind, key, entries in postings:
        kept = [(ref, amount) for ref, amount in entries if amount != 0]
        _check_balanced(key, kept)
        rows.append((kind, key))
        lines += [(key, ref.identity, amount) for ref, amount in kept]
    identities = sorted({identity for _, identity, _ in lines})
    params: list[Any] = [*identities]
    for kind, key in rows:
        params += [kind, key, order.id, "", now]
    params.append(len(identities))
    for line in lines:
        params += list(line)
    if refuse_in_sql:
        complete = "(SELECT CASE WHEN count(*) = %s THEN true ELSE weituan_refuse('accounts_missing') > 0 END FROM a)"
    else:
        complete = "(SELECT count(*) FROM a) = %s"
    sql = (
        f"WITH a AS (SELECT id, identity FROM {quote(Account._meta.db_table)}"  # noqa: S608
        f" WHERE identity IN ({', '.join(['%s'] * len(identities))})),"
        f" p AS (INSERT INTO {quote(Posting._meta.db_table)} (kind, key, order_id, memo, created_at)"
        f" SELECT v.kind, v.key, v.order_id, v.memo, v.created_at"
        f" FROM (VALUES {', '.join(['(%s, %s, %s::bigint, %s, %s::timestamptz)'] * len(rows))})"
        " AS v (kind, key, order_id, memo, created_at)"
        f" WHERE {complete} RETURNING id, key)"
        f" INSERT INTO {quote(Entry._meta.db_table)} (posting_id, account_id, amount)"
        f" SELECT p.id, a.id, v.amount FROM (VALUES {', '.join(['(%s, %s, %s::bigint)'] * len(lines))})"
        " AS v (key, identity, amount) JOIN p ON p.key = v.key JOIN a ON a.identity = v.identity"
    )
    sent = batch.add(sql, params)

    def written() -> bool:
        count = sent().rowcount
        if count not in (0, len(lines)):
            raise UnbalancedPosting(f"{count} entries written of {len(lines)}")
        return count == len(lines)

    return written


def _check_balanced(key: str, entries: Sequence[tuple[Account | AccountRef, int]]) -> None:
    per_currency: dict[str, int] = defaultdict(int)
    for account, amount in entries:
        if not isinstance(amount, int):
            raise UnbalancedPosting(f"posting {key}: amount {amount!r} is not integer minor units")
        per_currency[account.currency] += amount
    if any(total != 0 for total in per_currency.values()) or not entries:
        raise UnbalancedPosting(f"posting {key} does not balance: {dict(per_currency)}")


def accounts_with_balance(
    *, wanted: Iterable[AccountRef], spend_from: AccountRef
) -> tuple[dict[AccountRef, Account], int]:
    """The `wanted` accounts and the balance of `spend_from` (one of them), locked against concurrent
    spends until the transaction ends; call inside the transaction.

    One query reads every account and that one balance (the SUM is evaluated for that row only). On
    PostgreSQL a `FOR UPDATE` of that row comes first, in a statement of its own (sent with the read,
    one round trip), so the SUM is read after the lock is granted and sees every spend committed before
    it. SQLite runs write transactions one at a time (BEGIN IMMEDIATE), which is already the lock.
    Accounts not created yet are created.
    """
    refs = {ref.identity: ref for ref in wanted}
    batch = StatementBatch()
    read = accounts_with_balance_send(batch, wanted=refs.values(), spend_from=spend_from)
    batch.send()
    found, balance = read()
    for ref in refs.values():
        if ref not in found:
            found[ref] = account_get(
                kind=ref.kind, currency=ref.currency, owner_id=ref.owner_id, name=ref.name
            )
    return found, balance


def accounts_with_balance_send(
    batch: StatementBatch, *, wanted: Iterable[AccountRef], spend_from: AccountRef
) -> Callable[[], tuple[dict[AccountRef, Account], int]]:
    """The statements of `accounts_with_balance`, added to `batch`; the returned call reads their
    answer once it was sent: the accounts that exist (none is created), and the balance."""
    refs = {ref.identity: ref for ref in wanted}
    spend_identity = spend_from.identity
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    marks = ", ".join(["%s"] * len(refs))
    # Hand-written: this runs in every checkout, where compiling the equivalent querysets cost more
    # than running them.
    if connection.features.has_select_for_update:
        batch.add(f"SELECT id FROM {accounts} WHERE identity = %s FOR UPDATE", [spend_identity])  # noqa: S608
    sent = batch.add(
        f"SELECT a.id, a.kind, a.owner_id, a.name, a.currency, a.identity,"  # noqa: S608
        f" CASE WHEN a.identity = %s THEN (SELECT SUM(e.amount) FROM {entries} e WHERE e.account_id = a.id) END"
        f" FROM {accounts} a WHERE a.identity IN ({marks})",
        [spend_identity, *refs],
    )

    def answer() -> tuple[dict[AccountRef, Account], int]:
        found: dict[AccountRef, Account] = {}
        balance = 0
        for id_, kind, owner_id, name, currency, identity, total in sent().rows:
            found[refs[identity]] = Account(
                id=id_, kind=kind, owner_id=owner_id, name=name, currency=currency, identity=identity
            )
            if identity == spend_identity:
                balance = int(total or 0)
        return found, balance

    return answer


def balance_of(account: Account) -> int:
    return int(Entry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0)


def balance_locked(account: Account) -> int:
    """The balance while holding the account row's lock, so two spends cannot both see the same money."""
    Account.objects.select_for_update().filter(pk=account.pk).first()
    return balance_of(account)
