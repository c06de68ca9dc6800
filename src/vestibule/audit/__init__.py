"""Audit events and login traces."""
