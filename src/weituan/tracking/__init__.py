"""Tracking: short links, clicks and events, visitors, sessions, channels and the analytics store."""
