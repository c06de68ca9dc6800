"""Directory sync: SCIM 2.0 for the identity providers that provision and deprovision an account's people."""
