"""The append-only double-entry ledger: accounts, postings and their entries (integer minor units).

Append-only is enforced by the database: triggers refuse any UPDATE or DELETE of a posting or an entry
(migration 0007), and any DELETE of an account or UPDATE changing what identifies it (0009); only a
`flush` of the whole database erases them.

Amounts are signed: an entry adds `amount` to its account's balance. The entries of every posting
sum to zero per currency, so the whole ledger sums to zero. Balances are derived from the entries,
never stored and edited: a SUM, or for a buyer wallet the running balance its latest entry carries.

The ledger's rows reference one another (an entry its posting and account, a posting its order)
without database constraints: they are only ever written by the ledger's writers, each entry in the
statement that writes its posting and names existing accounts, nothing in them is ever deleted, and
`weituan ledger check` proves every reference. A constraint would cost each checkout a checked and
locked row per reference at COMMIT.
"""

from django.conf import settings
from django.db import models

# SQLite: while this table holds a row, the ledger's DELETE triggers let deletes through (the deals
# app's `flush` command, in its own transaction); it is no model, so a flush does not empty it.
LEDGER_ERASURE_TABLE = "deals_ledger_erasure"


class AccountKind(models.TextChoices):
    WALLET = "wallet", "buyer wallet (spendable)"
    HELD = "held", "buyer funds on hold"
    MERCHANT_PAYABLE = "merchant_payable", "owed to the merchant"
    PLATFORM_FEE = "platform_fee", "platform fee income"
    GATEWAY = "gateway", "money outside the platform, per gateway (top-ups, card holds, payouts)"
    PROMOTIONS = "promotions", "referral credits paid by the platform"


class Account(models.Model):
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField(max_length=40, blank=True)  # e.g. the gateway of a GATEWAY account
    currency = models.CharField(max_length=3)
    # "kind:owner-or-name:currency", unique, so concurrent first uses create one account.
    identity = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return f"{self.kind}:{self.owner_id or self.name}:{self.currency}"


class Posting(models.Model):
    """One business event moving money (a top-up, an authorize, a capture...). Never updated or deleted."""

    kind = models.CharField(max_length=20)
    # Unique (`posting_key`): the same capture or refund can never be posted twice, even after a crash
    # and a retry. A constraint rather than `unique=True`, which on PostgreSQL adds a second index for
    # LIKE lookups that nothing makes, written on every checkout all the same.
    key = models.CharField(max_length=120)
    order = models.ForeignKey(
        "deals.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="postings",
        db_constraint=False,
    )
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="posting_key")]


class Entry(models.Model):
    posting = models.ForeignKey(
        Posting, on_delete=models.PROTECT, related_name="entries", db_constraint=False
    )
    # Indexed by the index that leads with it (account + posting).
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    amount = models.BigIntegerField()
    # On a buyer wallet's entry (None on any other account's): the wallet's balance after it, that is
    # the balance of the wallet's entry before it (by posting) plus `amount`. Written with the entry by
    # a writer holding the wallet's row lock, so a spend reads one entry instead of a SUM over the
    # wallet's whole history; never changed, and checked against the entries by `weituan ledger check`.
    balance = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "posting"])]
