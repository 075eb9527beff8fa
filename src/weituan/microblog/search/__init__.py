"""Search over posts, users and topics (SQLite FTS5 or PostgreSQL full text), and trending topics."""
