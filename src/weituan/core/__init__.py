"""Building blocks shared by every app: ids, money, text length, state graphs, settings helpers."""
