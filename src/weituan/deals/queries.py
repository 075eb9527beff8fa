"""Reads of the deals app: permission-checked fetches, lists for pages and the API, ledger checks."""

from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from weituan.core.errors import NotFound
from weituan.deals.errors import NotYourDeal
from weituan.deals.models import (
    Account,
    AccountKind,
    Deal,
    DealState,
    Entry,
    FlashBatch,
    Order,
    OrderEndReason,
    OrderState,
    Posting,
    Referral,
    Refund,
    RefundState,
    Team,
    TeamState,
    UserDealQuota,
    Voucher,
    VoucherState,
)
from weituan.deals.models.deals import ENDED_STATES
from weituan.deals.models.orders import CANCELLABLE, HELD_STATES
from weituan.deals.models.write_keys import WriteKey


def deal_for_viewer(*, deal_id: int, user: Any | None) -> Deal:
    """A deal anyone may see once published; a draft only to its merchant."""
    deal = Deal.objects.select_related("merchant").filter(id=deal_id).first()
    if deal is None or (deal.state == DealState.DRAFT and (user is None or user.id != deal.merchant_id)):
        raise NotFound("No such deal")
    return deal


def flash_batch_next(*, deal_id: int) -> FlashBatch | None:
    """The flash batch of the deal that goes on sale next: the earliest not released yet, with
    `opens_sale`: whether it is the sale's first, no batch of the deal having gone on sale yet (read
    in the same query)."""
    released = FlashBatch.objects.filter(deal_id=deal_id, released_at__isnull=False)
    return (
        FlashBatch.objects.filter(deal_id=deal_id, released_at__isnull=True)
        .annotate(opens_sale=~Exists(released))
        .order_by("release_at")
        .first()
    )


def deal_for_merchant(*, deal_id: int, user: Any) -> Deal:
    deal = Deal.objects.select_related("merchant").filter(id=deal_id).first()
    if deal is None:
        raise NotFound("No such deal")
    if deal.merchant_id != user.id:
        raise NotYourDeal("This deal belongs to another merchant")
    return deal


def deals_of_merchant(*, merchant: Any) -> QuerySet[Deal]:
    return Deal.objects.filter(merchant=merchant).order_by("-id")


def deals_on_sale() -> QuerySet[Deal]:
    return (
        Deal.objects.filter(state__in=(DealState.LIVE, DealState.TIPPED))
        .select_related("merchant")
        .order_by("ends_at")
    )


def order_for_user(*, order_id: int, user: Any) -> Order:
    """The buyer's own order, or any order of the merchant's deal; others see nothing."""
    order = Order.objects.select_related("deal", "team").filter(id=order_id).first()
    if order is None or user.id not in (order.buyer_id, order.deal.merchant_id):
        raise NotFound("No such order")
    return order


def orders_of_buyer(*, user: Any) -> QuerySet[Order]:
    """The buyer's orders, newest first, each with `cancellable`: whether a cancel can succeed now,
    `refund_pending`: whether a refund of it is asked for and its provider has not confirmed it yet, and
    `has_valid_vouchers`: whether any of its vouchers can still be used (or refunded), and
    `refunded_amount`: what its completed refunds have returned (minor units; 0 for none)."""
    return (
        Order.objects.filter(buyer=user)
        .select_related("deal", "team")
        .annotate(
            cancellable=ExpressionWrapper(CANCELLABLE, output_field=BooleanField()),
            refund_pending=Exists(
                Refund.objects.filter(order_id=OuterRef("id"), state=RefundState.REQUESTED)
            ),
            has_valid_vouchers=Exists(
                Voucher.objects.filter(order_id=OuterRef("id"), state=VoucherState.VALID)
            ),
            refunded_amount=Coalesce(
                Subquery(
                    Refund.objects.filter(order_id=OuterRef("id"), state=RefundState.COMPLETED)
                    .values("order_id")
                    .annotate(total=Sum("amount"))
                    .values("total")
                ),
                Value(0),
            ),
        )
        .order_by("-id")
    )


def refund_shown(*, order: Order) -> Refund | None:
    """The refund an order's buyer is shown: one still waiting for its provider if there is one, else
    the latest (completed or declined); None for an order never refunded. Only a paid order has any."""
    if order.state not in (OrderState.CAPTURED, OrderState.REFUNDED):
        return None
    if "refunds" in getattr(order, "_prefetched_objects_cache", {}):  # a list's orders: read at once
        refunds = sorted(order.refunds.all(), key=lambda refund: -refund.id)
    else:
        refunds = list(order.refunds.order_by("-id"))
    pending = [refund for refund in refunds if refund.state == RefundState.REQUESTED]
    shown = pending or refunds
    return shown[0] if shown else None


def orders_of_deal(*, deal: Deal) -> QuerySet[Order]:
    return Order.objects.filter(deal=deal).select_related("buyer", "team").order_by("-id")


def team_for_viewer(*, team_id: int) -> Team:
    team = Team.objects.select_related("deal", "leader").filter(id=team_id).first()
    if team is None:
        raise NotFound("No such team")
    return team


def team_member_names(*, team: Team) -> list[str]:
    """The buyers the team counts among its `members`: those in it now, paid or refunded since, and those
    whose hold was released because the team (or its deal) closed without them being at fault. A buyer
    who left while it was open (cancelled, switched to the solo price, did not pay) gave up their seat."""
    closed_on_them = Q(
        state__in=(OrderState.VOIDING, OrderState.VOIDED, OrderState.EXPIRED),
        end_reason__in=(OrderEndReason.TEAM_EXPIRED, OrderEndReason.DEAL_FAILED),
    )
    in_it = Q(state__in=(OrderState.PENDING, OrderState.AUTHORIZED, OrderState.CAPTURED, OrderState.REFUNDED))
    return list(
        Order.objects.filter(in_it | closed_on_them, team=team)
        .order_by("id")
        .values_list("buyer__username", flat=True)
    )


def vouchers_of_holder(*, user: Any) -> QuerySet[Voucher]:
    return Voucher.objects.filter(holder=user).select_related("deal", "redeemed_by").order_by("-id")


def request_keeping_key(*, user: Any, key: str) -> str | None:
    """The request of `user` whose own row keeps this Idempotency-Key, or None: "order" (an order
    placed with it), "refund:<order id>" (a refund of that order asked for with it), or the request
    whose change kept it (`services.write_keys`): "cancel:<order id>" or "solo:<order id>" (that order
    cancelled or switched to the solo price with it), "merge:<team id>:<into id>" (that team merged
    into the other), "redeem:<voucher code>" (that voucher redeemed), "publish:<deal id>" (that deal
    published)."""
    if Order.objects.filter(buyer_id=user.id, client_key=key).exists():
        return "order"
    written = WriteKey.objects.filter(sender_id=user.id, key=key).values_list("request", flat=True)
    request = written.first()
    if request is not None:
        return request
    order_id = (
        Refund.objects.filter(requested_by_id=user.id, client_key=key)
        .values_list("order_id", flat=True)
        .first()
    )
    return None if order_id is None else f"refund:{order_id}"


def voucher_for_holder_or_merchant(*, code: str, user: Any) -> Voucher:
    """A voucher its holder, or the merchant of its deal, may look at (its QR code): the code is the
    secret, so anyone else is told there is no such voucher."""
    voucher = (
        Voucher.objects.select_related("deal")
        .filter(Q(holder=user) | Q(deal__merchant=user), code=code)
        .first()
    )
    if voucher is None:
        raise NotFound("No such voucher")
    return voucher


def redemptions_of_merchant(*, merchant: Any) -> QuerySet[Voucher]:
    return (
        Voucher.objects.filter(deal__merchant=merchant, state=VoucherState.REDEEMED)
        .select_related("deal", "holder")
        .order_by("-redeemed_at")
    )


@dataclass(frozen=True)
class WalletView:
    currency: str
    available: int
    held: int


def _balance(kind: str, owner_id: int, currency: str) -> int:
    """A balance by account identity, without creating the account (reads never write): a buyer
    wallet's latest running balance, any other account's SUM."""
    entries = Entry.objects.filter(account__identity=f"{kind}:{owner_id}:{currency}")
    if kind == AccountKind.WALLET:
        return int(entries.order_by("-posting_id").values_list("balance", flat=True).first() or 0)
    return int(entries.aggregate(t=Sum("amount"))["t"] or 0)


def wallet_of(*, user: Any, currency: str = "CNY") -> WalletView:
    return WalletView(
        currency=currency,
        available=_balance(AccountKind.WALLET, user.id, currency),
        held=_balance(AccountKind.HELD, user.id, currency),
    )


@dataclass(frozen=True)
class ReferralsView:
    """An inviter's friends: how many joined through their link, how many earned them credit, and the
    credit earned in `currency`."""

    invited: int
    credited: int
    credit_total: int


def referrals_of_inviter(*, user: Any, currency: str = "CNY") -> ReferralsView:
    credited = Q(credited_at__isnull=False)
    row = Referral.objects.filter(inviter_id=user.id).aggregate(
        invited=Count("id"),
        credited=Count("id", filter=credited),
        credit_total=Sum("credit", filter=credited & Q(currency=currency)),
    )
    return ReferralsView(
        invited=int(row["invited"] or 0),
        credited=int(row["credited"] or 0),
        credit_total=int(row["credit_total"] or 0),
    )


def account_currencies(*, user: Any, kinds: tuple[str, ...]) -> list[str]:
    """The currencies `user` has an account of one of `kinds` in (money there now or once), sorted."""
    rows = Account.objects.filter(owner_id=user.id, kind__in=kinds).values_list("currency", flat=True)
    return sorted(set(rows))


def payouts_of_merchant(*, merchant: Any, currency: str = "CNY") -> list[dict[str, Any]]:
    rows = (
        Entry.objects.filter(
            account__identity=f"{AccountKind.MERCHANT_PAYABLE}:{merchant.id}:{currency}",
            posting__kind="payout",
        )
        .order_by("-posting_id")
        .values("posting__created_at", "amount")
    )
    return [dict(row) for row in rows]


def _buyers_counted_sql(deal_column: str) -> str:
    """SQL counting the buyers of the deal whose id is `deal_column` that count towards its tipping point
    (see `deal_buyers_counted`), with `BUYERS_COUNTED_PARAMS`. Written by hand, not built by the ORM:
    every deal card (each deal post in every timeline) asks for it, and building the ORM's subquery
    cost more than running it."""
    quote = connection.ops.quote_name
    orders, teams = quote(Order._meta.db_table), quote(Team._meta.db_table)
    return (
        f"SELECT count(DISTINCT o.buyer_id) FROM {orders} o LEFT JOIN {teams} t ON t.id = o.team_id"  # noqa: S608
        f" WHERE o.deal_id = {deal_column} AND o.state IN (%s, %s) AND (o.team_id IS NULL OR t.state = %s)"
    )


BUYERS_COUNTED_PARAMS = (OrderState.AUTHORIZED.value, OrderState.CAPTURED.value, TeamState.FILLED.value)


def deal_buyers_counted(*, deal_id: int) -> int:
    """The buyers counting towards the deal's tipping point (its minimum number of buyers): those with
    an order whose payment is held or made, outside a team still waiting to fill. A buyer counts once
    however many units or orders they took (gifts included); a reservation not paid yet, a cancelled,
    voided, expired or refunded order counts nothing."""
    with connection.cursor() as cursor:
        cursor.execute(_buyers_counted_sql("%s"), [deal_id, *BUYERS_COUNTED_PARAMS])
        return int(cursor.fetchone()[0])


def buyers_counted_until_tipped() -> RawSQL:
    """For an annotation of a Deal queryset: `deal_buyers_counted` of each deal that has not tipped, NULL
    for one that has (nothing shows the count then, and a tipped deal may have many orders to count)."""
    deal = connection.ops.quote_name(Deal._meta.db_table)
    return RawSQL(  # noqa: S611  (names of this app's tables; the values are parameters)
        f"CASE WHEN {deal}.tipped_at IS NULL THEN ({_buyers_counted_sql(f'{deal}.id')}) END",
        BUYERS_COUNTED_PARAMS,
    )


def deal_progress(*, deal: Deal) -> dict[str, int]:
    """Units per order state, and the buyers counting towards the tipping point. A paid unit is counted
    by its voucher, so one refunded out of a paid order moves from `captured` (paid) to `refunded` the
    moment its refund is asked for, as the whole order does; `redeemed` counts the vouchers used."""
    counts = dict(
        Order.objects.filter(deal=deal)
        .values_list("state")
        .annotate(units=Sum("quantity"))
        .values_list("state", "units")
    )
    vouchers = dict(
        Voucher.objects.filter(deal=deal)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    refunded = vouchers.get(VoucherState.REFUNDING, 0) + vouchers.get(VoucherState.REFUNDED, 0)
    paid = sum(vouchers.values()) - refunded
    return {
        **{state: int(counts.get(state, 0) or 0) for state in OrderState.values},
        "captured": paid,
        "refunded": refunded,
        "redeemed": vouchers.get(VoucherState.REDEEMED, 0),
        "buyers": deal_buyers_counted(deal_id=deal.id),
    }


# --- ledger checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerReport:
    totals: dict[str, int]  # per currency; must be 0
    unbalanced_postings: list[int]
    open_holds_on_ended_deals: list[int]  # order ids
    # currency -> (held accounts, orders whose payment is held: authorized, or voiding until recorded)
    held_mismatch: dict[str, tuple[int, int]]
    postings: int
    # Entries whose running balance is not what the entries say: a wallet entry's must be the SUM of
    # its wallet's entries up to it (by posting), and an entry of any other account carries none.
    running_balance_mismatches: list[int] = field(default_factory=list)
    # "entry.posting", "entry.account", "posting.order": ids of rows naming a row that does not exist.
    dangling_references: dict[str, list[int]] = field(default_factory=dict)
    # Merchant payable accounts below zero (account identity -> balance): the platform would be owed by
    # a merchant, which payouts that hold back what may still be refunded never leave.
    merchants_below_zero: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not any(self.totals.values())
            and not self.unbalanced_postings
            and not self.open_holds_on_ended_deals
            and not self.held_mismatch
            and not self.running_balance_mismatches
            and not self.dangling_references
            and not self.merchants_below_zero
        )

    def problems(self) -> list[str]:
        found = []
        for currency, total in sorted(self.totals.items()):
            if total:
                found.append(f"the {currency} ledger sums to {total}, not 0")
        if self.unbalanced_postings:
            found.append(
                f"{len(self.unbalanced_postings)} unbalanced postings (first: {self.unbalanced_postings[0]})"
            )
        if self.open_holds_on_ended_deals:
            found.append(
                f"{len(self.open_holds_on_ended_deals)} holds still open on closed deals"
                f" (orders {', '.join(map(str, self.open_holds_on_ended_deals[:5]))})"
            )
        for currency, (held, authorized) in sorted(self.held_mismatch.items()):
            found.append(f"{currency} on hold is {held} but held orders total {authorized}")
        if self.running_balance_mismatches:
            found.append(
                f"{len(self.running_balance_mismatches)} entries whose running balance disagrees with the"
                f" entries (first: {self.running_balance_mismatches[0]})"
            )
        for reference, ids in sorted(self.dangling_references.items()):
            found.append(f"{len(ids)} rows whose {reference} does not exist (first: {ids[0]})")
        if self.merchants_below_zero:
            first, balance = sorted(self.merchants_below_zero.items())[0]
            found.append(
                f"{len(self.merchants_below_zero)} merchant balances below zero (first: {first} at {balance})"
            )
        return found


def ledger_report() -> LedgerReport:
    totals = {
        row["account__currency"]: int(row["total"] or 0)
        for row in Entry.objects.values("account__currency").annotate(total=Sum("amount"))
    }
    unbalanced = [
        int(row["posting_id"])
        for row in Entry.objects.values("posting_id")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("posting_id")[:100]
    ]
    open_holds = list(
        Order.objects.filter(state__in=(OrderState.PENDING, *HELD_STATES), deal__state__in=ENDED_STATES)
        .order_by("id")
        .values_list("id", flat=True)[:100]
    )
    held = {
        row["account__currency"]: int(row["total"] or 0)
        for row in Entry.objects.filter(account__kind=AccountKind.HELD)
        .values("account__currency")
        .annotate(total=Sum("amount"))
    }
    authorized = {
        row["currency"]: int(row["total"] or 0)
        for row in Order.objects.filter(state__in=HELD_STATES)
        .values("currency")
        .annotate(total=Sum("amount"))
    }
    mismatch = {
        currency: (held.get(currency, 0), authorized.get(currency, 0))
        for currency in set(held) | set(authorized)
        if held.get(currency, 0) != authorized.get(currency, 0)
    }
    return LedgerReport(
        totals=totals,
        unbalanced_postings=unbalanced,
        open_holds_on_ended_deals=open_holds,
        held_mismatch=mismatch,
        postings=Posting.objects.count(),
        running_balance_mismatches=_running_balance_mismatches(),
        dangling_references=_dangling_references(),
        merchants_below_zero={
            row["account__identity"]: int(row["total"])
            for row in Entry.objects.filter(account__kind=AccountKind.MERCHANT_PAYABLE)
            .values("account__identity")
            .annotate(total=Sum("amount"))
            .filter(total__lt=0)
        },
    )


def _running_balance_mismatches(limit: int = 100) -> list[int]:
    """Entries whose `balance` is not the running SUM of their wallet's entries (by posting, then
    entry), or that carry a balance on an account that is not a buyer wallet."""
    quote = connection.ops.quote_name
    entries, accounts = quote(Entry._meta.db_table), quote(Account._meta.db_table)
    wallet = AccountKind.WALLET.value
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT e.id AS id, e.balance AS balance,"  # noqa: S608
            " SUM(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.posting_id, e.id) AS running"
            f" FROM {entries} e JOIN {accounts} a ON a.id = e.account_id WHERE a.kind = %s) AS r"
            " WHERE r.balance IS NULL OR r.balance <> r.running"
            f" UNION SELECT e.id FROM {entries} e JOIN {accounts} a ON a.id = e.account_id"
            " WHERE a.kind <> %s AND e.balance IS NOT NULL"
            " ORDER BY 1 LIMIT %s",
            [wallet, wallet, limit],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def _dangling_references(limit: int = 100) -> dict[str, list[int]]:
    """The ledger's references that no database constraint enforces, checked: for each, the ids of
    the rows whose referenced row does not exist."""
    rows: dict[str, QuerySet[Any]] = {
        "entry.posting": Entry.objects.filter(~Exists(Posting.objects.filter(id=OuterRef("posting_id")))),
        "entry.account": Entry.objects.filter(~Exists(Account.objects.filter(id=OuterRef("account_id")))),
        "posting.order": Posting.objects.filter(order_id__isnull=False).filter(
            ~Exists(Order.objects.filter(id=OuterRef("order_id")))
        ),
    }
    dangling = {
        name: list(found.order_by("id").values_list("id", flat=True)[:limit]) for name, found in rows.items()
    }
    return {name: ids for name, ids in dangling.items() if ids}


def accounts_count() -> int:
    return Account.objects.aggregate(n=Count("id"))["n"]


def units_held(*, deal_id: int, user: Any) -> int:
    """How many units of the deal the buyer holds for themselves (what the per-person limit counts)."""
    held = (
        UserDealQuota.objects.filter(deal_id=deal_id, user_id=user.pk).values_list("own", flat=True).first()
    )
    return int(held or 0)
