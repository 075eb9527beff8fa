"""Micro-blog writes, one module per concept."""
