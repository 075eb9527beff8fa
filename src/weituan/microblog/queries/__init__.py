"""Micro-blog reads, one module per concept."""
