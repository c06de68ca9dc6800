from django.urls import include, path

from vestibule.api.router import api
from vestibule.conf.metrics import metrics_view
from vestibule.console.assets import serve_asset

urlpatterns = [
    path("", include("vestibule.login.urls")),
    path("", include("vestibule.people.urls")),
    path("", include("vestibule.signin.urls")),
    path("", include("vestibule.provider.urls")),
    path("", include("vestibule.testidp.urls")),
    path("scim/v2/", include("vestibule.directory.urls")),
    path("console/", include("vestibule.console.urls")),
    path("setup/", include("vestibule.setup.urls")),
    # The logos the sign-in pages show (public, same-origin, addressed by their SHA-256).
    path("branding/", include("vestibule.console.public_urls")),
    # `vestibule demo`'s one-time link into the console; a 404 unless the server runs in demo mode.
    path("demo/", include("vestibule.demo")),
    path("assets/<str:name>", serve_asset, name="asset"),
    path("api/v1/", api.urls),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "vestibule.login.views.not_found"
handler500 = "vestibule.login.views.server_error"
