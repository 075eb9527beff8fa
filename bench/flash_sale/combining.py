"""What a checkout's writes cost PostgreSQL one order a transaction, and with orders combined.

    python -m bench.flash_sale.combining --postgres postgres://postgres@127.0.0.1:5432/NAME \\
        [--redis redis://127.0.0.1:6379/N] [--seconds 10] [--clients 1 8]

The checkout's write statements (the order, the wallet's lock and balance check, the posting and its
entries, the outbox event, the buyer's quota and the deal's stock) are run by pgbench on the product's
own tables, prepared and a transaction's statements in one round trip (pipeline mode), as the product
sends them:

- `single`: one checkout a transaction, as the product writes it now;
- `combined`: four checkouts of four buyers a transaction, as set-based statements: every wallet
  locked first (in id order), then the orders, the postings and their entries, the outbox events, the
  quotas, and the deal's row updated once;
- `serial`: the statements of four checkouts one after another in one transaction (each order locks
  the deal's row before the next order's wallet, so transactions deadlock one another);
- `raw`: the raw conditional UPDATE of the deal's row.

For each, at each number of connections: transactions/s, failed transactions, and the CPU the
database's processes used a transaction and a checkout. The balance check is written so that it never
refuses (the buyers' wallets are not topped up for every run). A deal and 50 buyers are made in the
database on the first run (as `bench.flash_sale.profile` makes them) and reused.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BUYERS = 50
COMBINED = 4
DEAL_TITLE = "秒杀 combining"

# pgbench reads `:name` as a variable anywhere in a line, so a literal colon is written chr(58).
COLON = "(chr(58) || '{0}')"
_B = "CAST(:b AS bigint)"


def _wallet(buyer: str) -> str:
    return f"'wallet' || chr(58) || {buyer} || {COLON.format('CNY')}"


def _held(buyer: str) -> str:
    return f"'held' || chr(58) || {buyer} || {COLON.format('CNY')}"


def _single_statements(buyer: str, deal_id: int) -> list[str]:
    """One checkout's writes, as the product sends them (values inlined as pgbench parameters)."""
    return [
        "INSERT INTO tracking_outboxevent (event_id, event, ts, visitor_id, user_id, payload, created_at,"
        f" moved_at) VALUES (md5(random()::text), 'order_placed', now(), 'u' || chr(58) || {buyer}, {buyer},"
        ' \'{"quantity": 1, "team_id": null}\', now(), NULL);',
        "INSERT INTO deals_order (id, deal_id, buyer_id, team_id, quantity, gift_quantity, unit_price, amount,"
        " currency, gateway, payment_ref, state, state_changed_at, end_reason, client_key, share_code,"
        " share_link_id, reserve_expires_at, captured_at, refunded_at, created_at)"
        f" VALUES (nextval('deals_order_id_seq'), {deal_id}, {buyer}, NULL, 1, 0, 100, 100, 'CNY', 'wallet',"
        " 'wallet', 'authorized', now(), '', NULL, '', NULL, NULL, NULL, NULL, now());",
        f"SELECT id FROM deals_account WHERE identity = {_wallet(buyer)} FOR UPDATE;",
        "SELECT CASE WHEN b.total < -1000000000000 THEN weituan_refuse('insufficient_balance') END"
        " FROM (SELECT coalesce((SELECT e.balance FROM deals_entry e WHERE e.account_id ="
        f" (SELECT id FROM deals_account WHERE identity = {_wallet(buyer)})"
        " ORDER BY e.posting_id DESC LIMIT 1), 0) AS total) AS b;",
        f"WITH a AS (SELECT id, identity, kind FROM deals_account WHERE identity IN ({_held(buyer)},"
        f" {_wallet(buyer)})), p AS (INSERT INTO deals_posting (kind, key, order_id, memo, created_at)"
        " SELECT 'authorize', 'order' || chr(58) || currval('deals_order_id_seq') || "
        f"{COLON.format('authorize')}, currval('deals_order_id_seq'), '', now()"
        " WHERE (SELECT CASE WHEN count(*) = 2 THEN true ELSE weituan_refuse('accounts_missing') > 0 END"
        " FROM a) RETURNING id, key) INSERT INTO deals_entry (posting_id, account_id, amount, balance)"
        " SELECT p.id, a.id, v.amount, CASE WHEN a.kind = 'wallet' THEN v.amount + coalesce((SELECT"
        " l.balance FROM deals_entry l WHERE l.account_id = a.id ORDER BY l.posting_id DESC LIMIT 1), 0)"
        f" END FROM (VALUES ({_wallet(buyer)}, -100::bigint), ({_held(buyer)}, 100::bigint))"
        " AS v (identity, amount) CROSS JOIN p JOIN a ON a.identity = v.identity;",
        "WITH q AS (INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts)"
        f" VALUES ({deal_id}, {buyer}, 1, 0) ON CONFLICT (deal_id, user_id) DO UPDATE SET"
        " own = deals_userdealquota.own + excluded.own, gifts = deals_userdealquota.gifts + excluded.gifts"
        " RETURNING own, gifts), d AS (UPDATE deals_deal SET sold = sold + 1, takers = takers +"
        f" (SELECT count(*) FROM q WHERE q.own + q.gifts = 1) WHERE id = {deal_id} AND sold + 1 <= released"
        " RETURNING sold, takers, state) SELECT CASE WHEN (SELECT count(*) FROM q) = 0 THEN"
        " weituan_refuse('per_user_limit') WHEN d.sold IS NULL THEN weituan_refuse('sold_out') END, d.sold"
        " FROM (SELECT 1) AS one LEFT JOIN d ON true;",
    ]


def _combined_statements(deal_id: int) -> list[str]:
    """COMBINED checkouts of buyers :b .. :b + COMBINED - 1 as set-based statements."""
    buyers = [_B if k == 0 else f"({_B} + {k})" for k in range(COMBINED)]
    array = f"ARRAY[{', '.join(buyers)}]::bigint[]"
    wallets = f"ARRAY[{', '.join(_wallet(b) for b in buyers)}]"
    accounts = f"ARRAY[{', '.join([_wallet(b) for b in buyers] + [_held(b) for b in buyers])}]"
    return [
        f"SELECT id FROM deals_account WHERE identity = ANY({wallets}) ORDER BY id FOR UPDATE;",
        "SELECT CASE WHEN min(t.total) < -1000000000000 THEN weituan_refuse('insufficient_balance') END"
        " FROM (SELECT coalesce((SELECT e.balance FROM deals_entry e WHERE e.account_id = w.id"
        f" ORDER BY e.posting_id DESC LIMIT 1), 0) AS total FROM deals_account w WHERE w.identity = ANY({wallets})) AS t;",
        "WITH o AS (INSERT INTO deals_order (id, deal_id, buyer_id, team_id, quantity, gift_quantity, unit_price,"
        " amount, currency, gateway, payment_ref, state, state_changed_at, end_reason, client_key, share_code,"
        " share_link_id, reserve_expires_at, captured_at, refunded_at, created_at)"
        f" SELECT nextval('deals_order_id_seq'), {deal_id}, u, NULL, 1, 0, 100, 100, 'CNY', 'wallet', 'wallet',"
        f" 'authorized', now(), '', NULL, '', NULL, NULL, NULL, NULL, now() FROM unnest({array}) u"
        " RETURNING id, buyer_id),"
        f" a AS (SELECT id, identity, kind FROM deals_account WHERE identity = ANY({accounts})),"
        " p AS (INSERT INTO deals_posting (kind, key, order_id, memo, created_at) SELECT 'authorize',"
        f" 'order' || chr(58) || o.id || {COLON.format('authorize')}, o.id, '', now() FROM o RETURNING id, order_id)"
        " INSERT INTO deals_entry (posting_id, account_id, amount, balance) SELECT p.id, a.id, v.amount,"
        " CASE WHEN a.kind = 'wallet' THEN v.amount + coalesce((SELECT l.balance FROM deals_entry l"
        " WHERE l.account_id = a.id ORDER BY l.posting_id DESC LIMIT 1), 0) END FROM p JOIN o ON o.id = p.order_id"
        f" CROSS JOIN LATERAL (VALUES ({_wallet('o.buyer_id')}, -100::bigint), ({_held('o.buyer_id')}, 100::bigint))"
        " AS v (identity, amount) JOIN a ON a.identity = v.identity;",
        "INSERT INTO tracking_outboxevent (event_id, event, ts, visitor_id, user_id, payload, created_at, moved_at)"
        " SELECT md5(random()::text), 'order_placed', now(), 'u' || chr(58) || u, u,"
        f' \'{{"quantity": 1, "team_id": null}}\', now(), NULL FROM unnest({array}) u;',
        "WITH q AS (INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts)"
        f" SELECT {deal_id}, u, 1, 0 FROM unnest({array}) u ON CONFLICT (deal_id, user_id) DO UPDATE SET"
        " own = deals_userdealquota.own + excluded.own, gifts = deals_userdealquota.gifts + excluded.gifts"
        f" RETURNING own, gifts), d AS (UPDATE deals_deal SET sold = sold + {COMBINED}, takers = takers +"
        f" (SELECT count(*) FROM q WHERE q.own + q.gifts = 1) WHERE id = {deal_id} AND sold + {COMBINED} <= released"
        f" RETURNING sold) SELECT CASE WHEN (SELECT count(*) FROM q) < {COMBINED} THEN"
        " weituan_refuse('per_user_limit') WHEN d.sold IS NULL THEN weituan_refuse('sold_out') END, d.sold"
        " FROM (SELECT 1) AS one LEFT JOIN d ON true;",
    ]


def scripts(deal_id: int, first_buyer: int) -> dict[str, tuple[str, int]]:
    """pgbench scripts by name, with the checkouts a transaction of each."""
    last = first_buyer + BUYERS - 1

    def transaction(buyer_range: str, statements: list[str]) -> str:
        return "\n".join([f"\\set b random({buyer_range})", "\\startpipeline", "BEGIN;", *statements,
                          "COMMIT;", "\\endpipeline", ""])  # fmt: skip

    serial = [
        line
        for k in range(COMBINED)
        for line in _single_statements(_B if k == 0 else f"({_B} + {k})", deal_id)
    ]
    return {
        "single": (transaction(f"{first_buyer}, {last}", _single_statements(_B, deal_id)), 1),
        "combined": (
            transaction(f"{first_buyer}, {last - COMBINED + 1}", _combined_statements(deal_id)),
            COMBINED,
        ),
        "serial": (transaction(f"{first_buyer}, {last - COMBINED + 1}", serial), COMBINED),
        "raw": (f"UPDATE deals_deal SET sold = sold + 1 WHERE id = {deal_id} AND sold + 1 <= released;\n", 1),
    }


def database_cpu_seconds() -> float:
    """CPU seconds used so far by PostgreSQL's processes and the backends they have reaped."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
            continue
        fields = text.rsplit(")", 1)[1].split()
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_pgbench(url: str, script: str, clients: int, seconds: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    try:
        before = database_cpu_seconds()
        done = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
             "-T", str(seconds), "-f", handle.name, url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        time.sleep(0.5)  # the backends exit and are reaped
        spent = database_cpu_seconds() - before
    finally:
        os.unlink(handle.name)
    figures: dict[str, Any] = {"transactions": 0, "failed": 0, "tps": 0.0}
    for line in done.stdout.splitlines():
        if line.startswith("number of transactions actually processed:"):
            figures["transactions"] = int(line.split(":")[1].split("/")[0])
        elif line.startswith("number of failed transactions:"):
            figures["failed"] = int(line.split(":")[1].split("(")[0])
        elif line.startswith("tps = "):
            figures["tps"] = float(line.split()[2])
    if not figures["transactions"] and done.returncode:
        raise SystemExit(f"pgbench failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    figures["cpu_ms"] = spent / max(figures["transactions"], 1) * 1000
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", required=True, help="DATABASE_URL of a database to keep the deal in")
    parser.add_argument("--redis", help="REDIS_URL, as the product runs with it")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "wt-combining"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    from bench.common import setup_django_for_profile

    setup_django_for_profile(args.data_dir, postgres=args.postgres, redis=args.redis)

    from django.utils import timezone

    from weituan.accounts.models import User
    from weituan.core.testing import make_user
    from weituan.deals.models import Deal
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish
    from weituan.deals.services.ledger import held_account
    from weituan.deals.services.wallet import wallet_top_up

    merchant = User.objects.filter(username="combining_shop").first() or make_user(
        "combining_shop", merchant=True
    )
    buyers = []
    for index in range(BUYERS):
        buyer = User.objects.filter(username=f"combining{index}").first()
        if buyer is None:
            buyer = make_user(f"combining{index}")
            wallet_top_up(user=buyer, amount=100)  # makes the wallet account
            held_account(buyer.pk, "CNY")
        buyers.append(buyer.pk)
    if buyers != list(range(buyers[0], buyers[0] + BUYERS)):
        raise SystemExit("the buyers' ids are not consecutive: use a fresh database")
    deal = Deal.objects.filter(title=DEAL_TITLE).first()
    if deal is None:
        now = timezone.now()
        units = 1_000_000
        deal = deal_create(
            merchant=merchant,
            data=DealInput(title=DEAL_TITLE, list_price=200, deal_price=100, max_quantity=units,
                           tipping_point=units, per_user_limit=units, starts_at=now - timedelta(minutes=1),
                           ends_at=now + timedelta(hours=10)),
        )  # fmt: skip
        deal = deal_publish(deal_id=deal.id, by=merchant)
    # Room for every run's units, whatever earlier runs sold.
    Deal.objects.filter(id=deal.id).update(
        released=2**31 - 1, max_quantity=2**31 - 1, per_user_limit=2**31 - 1
    )
    url = args.postgres
    print("| transaction | checkouts a transaction | connections | transactions/s | failed |"
          " PostgreSQL CPU a transaction, ms | a checkout, ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, (script, checkouts) in scripts(deal.id, buyers[0]).items():
        for clients in args.clients:
            got = run_pgbench(url, script, clients, args.seconds)
            print(
                f"| {name} | {checkouts} | {clients} | {got['tps']:,.0f} | {got['failed']} |"
                f" {got['cpu_ms']:.3f} | {got['cpu_ms'] / checkouts:.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
