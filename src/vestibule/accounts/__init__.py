"""Accounts (tenants), their projects, users, memberships and role grants."""
