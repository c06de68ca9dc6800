"""SCIM 2.0 (RFC 7643/7644) as plain Python, no Django.

``errors`` (the Error message, §3.12), ``filters`` (the filter grammar, §3.4.2.2,
and PATCH paths), ``patch`` (PatchOp, §3.5.2, with the Entra ID and Okta
dialects, and the User/Group schemas derived from scim2-models). The service
that serves them over HTTP is ``vestibule.directory``.
"""
