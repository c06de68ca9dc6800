"""The admin REST API (django-ninja), authorized by API keys."""
