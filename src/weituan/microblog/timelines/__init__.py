"""Home, user, topic and public timelines, with hybrid fan-out (database rows or Redis sorted sets)."""
