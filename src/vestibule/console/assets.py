"""The pages' own scripts and styles, vendored in the package and served from the same origin.

No CDN: self-hosted deployments may be offline and the CSP allows only this
origin. The files are read once; each URL carries a digest of the content,
so browsers may cache a version for a year and a new release is fetched at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_GET

STATIC = Path(__file__).parent / "static" / "vestibule"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    digest: str


@cache
def assets() -> dict[str, Asset]:
    found = {}
    for path in sorted(STATIC.iterdir()):
        if path.is_file() and path.suffix in TYPES:
            body = path.read_bytes()
            found[path.name] = Asset(body, TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])
    return found


def asset_url(name: str) -> str:
    return f"/assets/{name}?v={assets()[name].digest}"


@require_GET
def serve_asset(request: HttpRequest, name: str) -> HttpResponse:
    asset = assets().get(name)
    if asset is None:
        raise Http404("no such asset")
    etag = f'"{asset.digest}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified()
    response = HttpResponse(asset.body, content_type=asset.content_type)
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    if request.GET.get("v") == asset.digest:
        response["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response["Cache-Control"] = "no-cache"
    return response
