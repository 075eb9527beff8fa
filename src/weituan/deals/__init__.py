"""Group-buying deals: deals, teams, orders, the payments ledger, vouchers and refunds."""
