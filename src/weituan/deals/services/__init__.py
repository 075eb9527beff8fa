"""Writes of the deals app, split by concept: deals, teams, orders, ledger, gateways, vouchers, referrals."""
