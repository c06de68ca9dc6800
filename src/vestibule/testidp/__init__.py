"""The built-in test SAML identity provider (demo only; ``VESTIBULE_TEST_IDP``)."""
