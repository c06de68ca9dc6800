"""Setup links: a customer's IT admin configures their identity provider without a Vestibule account."""
