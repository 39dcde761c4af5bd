"""Identity: users, organizations, members, roles and API keys."""
