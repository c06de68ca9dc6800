"""The configuration hub: server-rendered pages for the operator and each account's administrators."""
