"""SCIM 2.0 (RFC 7643/7644) as plain Python: filters, PATCH operations and errors, no Django."""
