"""Public URLs of the console app, outside /console/: the logos the sign-in pages show (at /branding/)."""

from __future__ import annotations

from vestibule.console.views.branding import public_urlpatterns

urlpatterns = public_urlpatterns
