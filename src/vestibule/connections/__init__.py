"""SSO connections ("SSO providers"), claimed domains, mapping roles and login state."""
