"""Push: subscriptions, digests and campaigns by email, web push and in-app notices."""
