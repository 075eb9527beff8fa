"""Rows of this app."""
