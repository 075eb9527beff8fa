"""Writes of tracking: short links, API keys, event ingestion and the outbox."""
