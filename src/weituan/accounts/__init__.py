"""Users, profiles, merchant verification and API tokens."""
