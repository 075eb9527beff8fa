"""Postings to the double-entry ledger. Every posting balances to zero; nothing is ever updated or deleted.

A buyer wallet's entries carry its running balance (`Entry.balance`): every writer of a wallet entry
holds the wallet's row lock (PostgreSQL: `FOR UPDATE`, taken in a statement before the one that reads
the balance before it; SQLite runs write transactions one at a time) from before its posting is
inserted until its transaction ends, so a wallet's entries are written one transaction at a time, in
posting order, each after the latest one committed. A write names a wallet in at most one of its
entries.
"""

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


class WalletEntriesClash(AssertionError):
    """One write naming a wallet in two entries: their running balances would have no order."""


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
    wallets = _wallets_of([entries])
    with transaction.atomic():  # the wallets' lock lasts until the entries are written
        before = wallet_balances_locked(wallets) if wallets else {}
        try:
            with transaction.atomic():
                posting = Posting.objects.create(kind=kind, key=key, order=order, memo=memo[:200])
        except IntegrityError:
            return None
        Entry.objects.bulk_create(
            [
                Entry(
                    posting=posting,
                    account=account,
                    amount=amount,
                    balance=_after(before, account.id, amount),
                )
                for account, amount in entries
            ]
        )
    return posting


def _wallets_of(entry_lists: Iterable[Sequence[tuple[Account, int]]]) -> list[int]:
    """The ids of the buyer wallets the entries name (each in one entry at most, else `WalletEntriesClash`)."""
    wallets: list[int] = []
    for entries in entry_lists:
        for account, _ in entries:
            if account.kind == AccountKind.WALLET:
                if account.id in wallets:
                    raise WalletEntriesClash(f"wallet account {account.id} named twice in one write")
                wallets.append(account.id)
    return wallets


def _after(before: dict[int, int], account_id: int, amount: int) -> int | None:
    """The running balance of an entry: the wallet's balance before it plus `amount`; None off wallets."""
    return before[account_id] + amount if account_id in before else None


def wallet_balances_locked(account_ids: Iterable[int]) -> dict[int, int]:
    """The balances of these buyer wallets, each locked until the transaction ends: call inside it.

    On PostgreSQL the rows are locked (in primary key order) by a statement of their own, before the
    one that reads the balances, whose snapshot then holds every entry committed before the locks
    were granted. SQLite runs write transactions one at a time, which is already the lock.
    """
    ids = sorted(set(account_ids))
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(f"SELECT id FROM {accounts} WHERE id IN ({marks}) ORDER BY id FOR UPDATE", ids)  # noqa: S608
        cursor.execute(
            f"SELECT a.id, {_LATEST_BALANCE.format(entries=entries)} FROM {accounts} a WHERE a.id IN ({marks})",  # noqa: S608
            ids,
        )
        found = {int(id_): int(balance or 0) for id_, balance in cursor.fetchall()}
    if len(found) != len(ids):
        raise Account.DoesNotExist(f"wallet accounts {sorted(set(ids) - set(found))} do not exist")
    return found


# A buyer wallet's balance: the running balance of its latest entry (0 without one); `a` is the
# account. Served by the entries' (account, posting) index: one index entry and one row read.
_LATEST_BALANCE = "coalesce((SELECT e.balance FROM {entries} e WHERE e.account_id = a.id ORDER BY e.posting_id DESC LIMIT 1), 0)"


def postings_write_new(
    *,
    order: Order,
    postings: Iterable[tuple[str, str, Iterable[tuple[Account, int]]]],
    wallet_balances: dict[int, int] | None = None,
) -> None:
    """Write the first postings of an order created in this same transaction: (kind, key, lines) each.

    Their keys name an order id that did not exist before this transaction, so no other posting can
    hold them and the savepoint `posting_write` needs is skipped: one INSERT for the postings, one for
    all their entries. `wallet_balances` (account id: balance) are wallets this transaction has
    already locked and read (`accounts_with_balance`); any other wallet the lines name is locked and
    read here.
    """
    rows: list[Posting] = []
    lines_of: list[list[tuple[Account, int]]] = []
    for kind, key, lines in postings:
        entries = [(account, amount) for account, amount in lines if amount != 0]
        _check_balanced(key, entries)
        rows.append(Posting(kind=kind, key=key, order=order))
        lines_of.append(entries)
    known = wallet_balances or {}
    wallets = _wallets_of(lines_of)
    before = {id_: known[id_] for id_ in wallets if id_ in known}
    missing = [id_ for id_ in wallets if id_ not in known]
    if missing:
        before.update(wallet_balances_locked(missing))
    if connection.vendor == "postgresql":
        _postings_and_entries_insert(rows, lines_of, before)
        return
    rows_insert(rows)
    rows_insert(
        [
            Entry(posting=posting, account=account, amount=amount, balance=_after(before, account.id, amount))
            for posting, entries in zip(rows, lines_of, strict=True)
            for account, amount in entries
        ]
    )


def _postings_and_entries_insert(
    rows: list[Posting], lines_of: list[list[tuple[Account, int]]], before: dict[int, int]
) -> None:
    """PostgreSQL: the postings and their entries in one statement (the entries find their posting by
    its unique key), one round trip fewer on every checkout; `before` holds the balances of the
    wallets named, read under their lock."""
    quote = connection.ops.quote_name
    now = timezone.now()
    posting_marks = ", ".join(["(%s, %s, %s, %s, %s)"] * len(rows))
    entry_lines = [(row.key, account.id, amount, _after(before, account.id, amount))
                   for row, entries in zip(rows, lines_of, strict=True) for account, amount in entries]  # fmt: skip
    entry_marks = ", ".join(["(%s, %s::bigint, %s::bigint, %s::bigint)"] * len(entry_lines))
    params: list[Any] = []
    for row in rows:
        params += [row.kind, row.key, row.order_id, row.memo, now]
    for line in entry_lines:
        params += list(line)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH p AS (INSERT INTO {quote(Posting._meta.db_table)} (kind, key, order_id, memo, created_at)"  # noqa: S608
            f" VALUES {posting_marks} RETURNING id, key)"
            f" INSERT INTO {quote(Entry._meta.db_table)} (posting_id, account_id, amount, balance)"
            f" SELECT p.id, v.account_id, v.amount, v.balance FROM (VALUES {entry_marks})"
            " AS v (key, account_id, amount, balance) JOIN p ON p.key = v.key",
            params,
        )
        if cursor.rowcount != len(entry_lines):
            raise UnbalancedPosting(f"{cursor.rowcount} entries written of {len(entry_lines)}")


def balance_check_send(batch: StatementBatch, *, spend_from: AccountRef, amount: int) -> None:
    """PostgreSQL: lock the wallet `spend_from` against concurrent spends and refuse, inside the batch,
    a spend of `amount` its balance does not cover: `weituan_refuse('insufficient_balance <balance>')`,
    so that nothing after it in the batch runs (see `insufficient_balance_of`). The balance (its latest
    entry's) is read in a statement after the lock's, with a snapshot taken once the lock was granted."""
    _check_wallet(spend_from)
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    batch.add(f"SELECT id FROM {accounts} WHERE identity = %s FOR UPDATE", [spend_from.identity])  # noqa: S608
    batch.locked.add(spend_from.identity)
    batch.add(
        "SELECT CASE WHEN b.total < %s THEN weituan_refuse('insufficient_balance ' || b.total) END"  # noqa: S608
        f" FROM (SELECT coalesce((SELECT e.balance FROM {entries} e WHERE e.account_id ="
        f" (SELECT id FROM {accounts} WHERE identity = %s) ORDER BY e.posting_id DESC LIMIT 1), 0) AS total) AS b",
        [amount, spend_from.identity],
    )


def _check_wallet(ref: AccountRef) -> None:
    if ref.kind != AccountKind.WALLET:
        raise ValueError(f"a spend is checked against a buyer wallet's running balance, not {ref.identity}")


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
    `weituan_refuse('accounts_missing')` instead, so that nothing after it in the batch runs.

    A wallet entry's running balance is read in the statement itself; a wallet that no earlier
    statement of the batch locks (`balance_check_send` does) is locked by a statement added first."""
    quote = connection.ops.quote_name
    now = timezone.now()
    rows: list[tuple[str, str]] = []
    lines: list[tuple[str, str, int]] = []
    wallets: list[str] = []
    for kind, key, entries in postings:
        kept = [(ref, amount) for ref, amount in entries if amount != 0]
        _check_balanced(key, kept)
        rows.append((kind, key))
        lines += [(key, ref.identity, amount) for ref, amount in kept]
        for ref, _ in kept:
            if ref.kind == AccountKind.WALLET:
                if ref.identity in wallets:
                    raise WalletEntriesClash(f"wallet {ref.identity} named twice in one write")
                wallets.append(ref.identity)
    unlocked = sorted(set(wallets) - batch.locked)
    if unlocked:
        batch.add(
            f"SELECT id FROM {quote(Account._meta.db_table)} WHERE identity IN ({', '.join(['%s'] * len(unlocked))})"  # noqa: S608
            " ORDER BY id FOR UPDATE",
            unlocked,
        )
        batch.locked.update(unlocked)
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
    entries_table = quote(Entry._meta.db_table)
    sql = (
        f"WITH a AS (SELECT id, identity, kind FROM {quote(Account._meta.db_table)}"  # noqa: S608
        f" WHERE identity IN ({', '.join(['%s'] * len(identities))})),"
        f" p AS (INSERT INTO {quote(Posting._meta.db_table)} (kind, key, order_id, memo, created_at)"
        f" SELECT v.kind, v.key, v.order_id, v.memo, v.created_at"
        f" FROM (VALUES {', '.join(['(%s, %s, %s::bigint, %s, %s::timestamptz)'] * len(rows))})"
        " AS v (kind, key, order_id, memo, created_at)"
        f" WHERE {complete} RETURNING id, key)"
        f" INSERT INTO {entries_table} (posting_id, account_id, amount, balance)"
        f" SELECT p.id, a.id, v.amount, CASE WHEN a.kind = '{AccountKind.WALLET.value}' THEN v.amount +"
        f" coalesce((SELECT l.balance FROM {entries_table} l WHERE l.account_id = a.id"
        " ORDER BY l.posting_id DESC LIMIT 1), 0) END"
        f" FROM (VALUES {', '.join(['(%s, %s, %s::bigint)'] * len(lines))})"
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

    `spend_from` is a buyer wallet. One query reads every account and that one balance (its latest
    entry's running balance). On PostgreSQL a `FOR UPDATE` of that row comes first, in a statement of
    its own (sent with the read, one round trip), so the balance is read after the lock is granted and
    sees every entry committed before it. SQLite runs write transactions one at a time (BEGIN
    IMMEDIATE), which is already the lock. Accounts not created yet are created.
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
            if ref == spend_from:  # its first use: locked and read now that it exists
                balance = wallet_balances_locked([found[ref].id])[found[ref].id]
    return found, balance


def accounts_with_balance_send(
    batch: StatementBatch, *, wanted: Iterable[AccountRef], spend_from: AccountRef
) -> Callable[[], tuple[dict[AccountRef, Account], int]]:
    """The statements of `accounts_with_balance`, added to `batch`; the returned call reads their
    answer once it was sent: the accounts that exist (none is created), and the balance."""
    _check_wallet(spend_from)
    refs = {ref.identity: ref for ref in wanted}
    spend_identity = spend_from.identity
    accounts, entries = Account._meta.db_table, Entry._meta.db_table
    marks = ", ".join(["%s"] * len(refs))
    # Hand-written: this runs in every checkout, where compiling the equivalent querysets cost more
    # than running them.
    if connection.features.has_select_for_update:
        batch.add(f"SELECT id FROM {accounts} WHERE identity = %s FOR UPDATE", [spend_identity])  # noqa: S608
        batch.locked.add(spend_identity)
    sent = batch.add(
        f"SELECT a.id, a.kind, a.owner_id, a.name, a.currency, a.identity,"  # noqa: S608
        f" CASE WHEN a.identity = %s THEN {_LATEST_BALANCE.format(entries=entries)} END"
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
    """The account's balance: a buyer wallet's latest running balance, any other account's SUM."""
    if account.kind == AccountKind.WALLET:
        latest = (
            Entry.objects.filter(account=account).order_by("-posting_id").values_list("balance", flat=True)
        )
        return int(latest.first() or 0)
    return int(Entry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"] or 0)


def balance_locked(account: Account) -> int:
    """The balance while holding the account row's lock, so two spends cannot both see the same money."""
    Account.objects.select_for_update().filter(pk=account.pk).first()
    return balance_of(account)
