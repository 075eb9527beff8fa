"""Where the time of one checkout (`POST /api/v1/deals/{id}/orders`) goes: its statements and a cProfile.

    python -m bench.flash_sale.profile --data-dir /tmp/wt-profile-flash                # SQLite
    python -m bench.flash_sale.profile --data-dir /tmp/wt-profile-flash-pg \\
        --postgres postgres://postgres@127.0.0.1:5432/NAME --redis redis://127.0.0.1:6379/N --orders 500

Requests go through the WSGI application (so the path in front of Django is measured too), in this
process, on one thread, each buyer buying one unit of a large live deal at a time. A fresh deal is made
on each run; the buyers and their tokens are kept in the store and reused.
"""

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BUYERS = 50


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--postgres", help="DATABASE_URL of a database to keep the buyers in")
    parser.add_argument("--redis", help="REDIS_URL for the stock gate")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--no-profile", action="store_true", help="only count statements and time orders")
    args = parser.parse_args()

    from bench.common import profile_requests, setup_django_for_profile, wsgi_post_json

    setup_django_for_profile(
        args.data_dir,
        postgres=args.postgres,
        redis=args.redis,
        extra={"WEITUAN_RATE_LIMIT_WRITES": "100000000"},
    )

    from django.utils import timezone

    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.core.testing import make_user
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish
    from weituan.deals.services.wallet import wallet_top_up
    from weituan.wsgi import application as wsgi_application

    application: Any = wsgi_application  # called with a bare start_response

    merchant = User.objects.filter(username="profile_shop").first() or make_user(
        "profile_shop", merchant=True
    )
    units = args.orders * 3 + BUYERS * 2
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title="秒杀 profile",
            list_price=200,
            deal_price=100,
            max_quantity=units,
            tipping_point=units,
            per_user_limit=units,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=2),
        ),
    )
    deal_id = deal_publish(deal_id=deal.id, by=merchant).id
    tokens = []
    for index in range(BUYERS):
        buyer = User.objects.filter(username=f"profile{index}").first() or make_user(f"profile{index}")
        wallet_top_up(user=buyer, amount=units * 100)
        tokens.append(access_token_issue(user=buyer)[0])
    body = b'{"quantity": 1, "unit_price": 100}'
    path = f"/api/v1/deals/{deal_id}/orders"
    counter = [0]

    def order(i: int) -> None:
        counter[0] += 1
        key = f"p{os.getpid()}-{deal_id}-{counter[0]}"
        status, content = wsgi_post_json(
            application, path, body, tokens[i % len(tokens)], HTTP_IDEMPOTENCY_KEY=key
        )
        assert status.startswith("201"), (status, content[:300])

    for i in range(len(tokens)):  # warm: accounts made, scripts loaded, statements compiled
        order(i)
    profile_requests(
        order, count=args.orders, noun="checkout", sort=args.sort, top=args.top, no_profile=args.no_profile
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
