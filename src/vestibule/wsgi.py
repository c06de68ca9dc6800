"""WSGI entry point for gunicorn (``vestibule serve``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vestibule.conf.settings")
application = get_wsgi_application()
