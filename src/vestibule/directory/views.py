"""SCIM 2.0 endpoints (RFC 7644 §3) under ``/scim/v2``: thin translators over ``directory.provisioning``.

Each view authenticates the bearer token (which names the account), reads
the request with ``directory.documents``, calls one provisioning function
and answers ``application/scim+json``. Every refusal is a
:class:`~vestibule.scim.errors.ScimError` rendered as RFC 7644 §3.12 asks.
CSRF does not apply: the credential is a header a browser never sends by
itself, never a cookie.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from vestibule.directory import provisioning as prov
from vestibule.directory.documents import MAX_GROUP_SIZE, group_document, read_json, resource_id, user_document
from vestibule.directory.models import ScimToken
from vestibule.directory.query import GROUP_FIELDS, USER_FIELDS, page, to_q
from vestibule.directory.tokens import base_url
from vestibule.domain.text import is_storable
from vestibule.scim import resources
from vestibule.scim.errors import ScimError
from vestibule.scim.filters import parse_filter
from vestibule.scim.patch import GROUP_SCHEMA, USER_SCHEMA, apply_patch, parse_patch

log = logging.getLogger("vestibule.directory")

MEDIA_TYPE = "application/scim+json"
# Query parameters that would carry a credential: never accepted (they end up in logs and Referer headers).
_CREDENTIAL_PARAMS = ("access_token", "token", "bearer")


def _respond(body: dict[str, Any] | None, status: int = 200, *, location: str | None = None) -> HttpResponse:
    response = HttpResponse(b"" if body is None else json.dumps(body).encode(), status=status, content_type=MEDIA_TYPE)
    if body is None:
        del response["Content-Type"]
    if location is not None:
        response["Location"] = location
    return response


def _error(exc: ScimError) -> HttpResponse:
    response = _respond(exc.body(), exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="scim"'
    return response


def _authenticate(request: HttpRequest) -> ScimToken:
    if any(p in request.GET for p in _CREDENTIAL_PARAMS):
        raise ScimError("send the SCIM token in the Authorization header, never in the URL", status=401)
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    token = ScimToken.authenticate(presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ScimError(
            "a valid SCIM token is required: 'Authorization: Bearer <token>' "
            "(POST /api/v1/accounts/<slug>/scim-tokens makes one)",
            status=401,
        )
    # Coarse last-use tracking, as for API keys: at most one write per token per minute.
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


Handler = Callable[..., HttpResponse]


def scim_endpoint(**handlers: Handler) -> Callable[..., HttpResponse]:
    """A view dispatching on the method to ``handlers`` (get=, post=, …), each called with the directory."""

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            directory = prov.Directory(_authenticate(request), request)
            # The token is the only credential here: a browser session riding along (a cookie) is no one's
            # authority in SCIM, and must not be named as the actor in the audit log either.
            request.user = AnonymousUser()
            handler = handlers.get(request.method.lower() if request.method else "")
            if handler is None:
                allowed = ", ".join(sorted(m.upper() for m in handlers))
                raise ScimError(f"{request.method} is not supported here (allowed: {allowed})", status=405)
            return handler(directory, request, **kwargs)
        except ScimError as exc:
            return _error(exc)
        except (OperationalError, InterfaceError):
            # The database is down or unreachable: the directory retries later (RFC 7644 §3.12 allows 503).
            log.warning("SCIM %s %s: database unavailable", request.method, request.path, exc_info=True)
            response = _error(ScimError("the service is unavailable for a moment; retry later", status=503))
            response["Retry-After"] = "30"
            return response
        except DatabaseError:
            # What row locks cannot order on SQLite (a PATCH racing a DELETE of the same resource) ends here
            # rather than in a 500: the directory reads the resource again and retries, as RFC 7644 §3.12 allows.
            log.warning("SCIM %s %s lost a race with a concurrent request", request.method, request.path, exc_info=True)
            return _error(ScimError("a concurrent request changed or removed this resource; read it again and retry",
                                    status=409))  # fmt: skip

    return view


def _listing(rows: Any, fields: Any, render: Callable[[Any], dict[str, Any]], query: dict[str, Any]) -> HttpResponse:
    """One page of ``rows`` (already rooted at the account) for a query: GET parameters or a SearchRequest."""
    text = query.get("filter")
    if text is not None and not isinstance(text, str):
        raise ScimError("filter must be a string", scim_type="invalidFilter")
    if text:
        if not is_storable(text):
            raise ScimError("the filter contains NUL or another control character", scim_type="invalidFilter")
        rows = rows.filter(to_q(parse_filter(text, flatten_value_filters=True), fields)).distinct()
    paging = page(_as_text(query.get("startIndex"), "startIndex"), _as_text(query.get("count"), "count"),
                  resources.MAX_RESULTS)  # fmt: skip
    total = rows.count()
    first = paging.start_index - 1
    chosen = rows[first : first + paging.count] if paging.count else []
    shown = [_project(query, render(row)) for row in chosen]
    return _respond(resources.list_response(shown, total=total, start_index=paging.start_index))


def _as_text(value: Any, label: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ScimError(f"{label} must be an integer", scim_type="invalidValue")


def _attribute_names(value: Any, label: str) -> str | None:
    """``attributes`` as a query parameter (comma-separated) or a SearchRequest list."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise ScimError(f"{label} must be a list of attribute names", scim_type="invalidValue")


def _project(query: Any, resource: dict[str, Any]) -> dict[str, Any]:
    return resources.project(
        resource,
        attributes=resources.attribute_list(_attribute_names(query.get("attributes"), "attributes")),
        excluded=resources.attribute_list(_attribute_names(query.get("excludedAttributes"), "excludedAttributes")),
    )


def _search_request(request: HttpRequest) -> dict[str, Any]:
    """A SearchRequest body (RFC 7644 §3.4.3) as query parameters."""
    unverified = read_json(request)
    if not isinstance(unverified, dict):
        raise ScimError("a SearchRequest is a JSON object", scim_type="invalidSyntax")
    wanted = {"filter", "startindex", "count", "attributes", "excludedattributes"}
    names = {"startindex": "startIndex", "excludedattributes": "excludedAttributes"}
    return {names.get(k.lower(), k.lower()): v for k, v in unverified.items() if k.lower() in wanted}


def _not_found(kind: str, value: str) -> ScimError:
    return ScimError(f"no {kind} with id '{value}' in this directory", status=404)


# Discovery ------------------------------------------------------------------------------


def _service_provider_config(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    return _respond(resources.service_provider_config(base_url()))


def _resource_types(directory: prov.Directory, request: HttpRequest, item: str = "") -> HttpResponse:
    return _discovery(resources.resource_types(base_url()), item, "ResourceType")


def _schemas(directory: prov.Directory, request: HttpRequest, item: str = "") -> HttpResponse:
    return _discovery(resources.schemas(base_url()), item, "Schema")


def _discovery(items: list[dict[str, Any]], item: str, kind: str) -> HttpResponse:
    if not item:
        return _respond(resources.list_response(items, total=len(items), start_index=1))
    for candidate in items:
        if candidate["id"] == item:
            return _respond(candidate)
    raise ScimError(f"no {kind} '{item}'", status=404)


# Users ----------------------------------------------------------------------------------


def _list_users(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    return _listing(prov.user_members(directory), USER_FIELDS, prov.render_user, request.GET.dict())


def _search_users(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    return _listing(prov.user_members(directory), USER_FIELDS, prov.render_user, _search_request(request))


def _create_user(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    membership = prov.create_user(directory, user_document(read_json(request)))
    resource = prov.render_user(membership)
    return _respond(resource, 201, location=resource["meta"]["location"])


def _member(directory: prov.Directory, user_id: str, *, lock: bool = False) -> Any:
    membership = prov.find_member(directory, resource_id(user_id), lock=lock)
    if membership is None:
        raise _not_found("User", user_id)
    return membership


def _get_user(directory: prov.Directory, request: HttpRequest, user_id: str) -> HttpResponse:
    return _respond(_project(request.GET.dict(), prov.render_user(_member(directory, user_id))))


# Writes read the resource locked, so concurrent requests for it take turns (see provisioning.find_member).


def _replace_user(directory: prov.Directory, request: HttpRequest, user_id: str) -> HttpResponse:
    doc = user_document(read_json(request))
    with transaction.atomic():
        membership = prov.replace_user(directory, _member(directory, user_id, lock=True), doc)
    return _respond(prov.render_user(membership))


def _patch_user(directory: prov.Directory, request: HttpRequest, user_id: str) -> HttpResponse:
    operations = parse_patch(read_json(request))
    with transaction.atomic():
        membership = _member(directory, user_id, lock=True)
        patched = apply_patch(prov.render_user(membership), operations, USER_SCHEMA)
        membership = prov.patch_user(directory, membership, user_document(patched))
    return _respond(prov.render_user(membership))


def _delete_user(directory: prov.Directory, request: HttpRequest, user_id: str) -> HttpResponse:
    with transaction.atomic():
        prov.delete_user(directory, _member(directory, user_id, lock=True))
    return _respond(None, 204)


# Groups ---------------------------------------------------------------------------------


def _list_groups(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    return _listing(prov.groups(directory), GROUP_FIELDS, prov.render_group, request.GET.dict())


def _search_groups(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    return _listing(prov.groups(directory), GROUP_FIELDS, prov.render_group, _search_request(request))


def _create_group(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    group = prov.create_group(directory, group_document(read_json(request)))
    resource = prov.render_group(group)
    return _respond(resource, 201, location=resource["meta"]["location"])


def _group(directory: prov.Directory, group_id: str, *, lock: bool = False) -> Any:
    group = prov.find_group(directory, resource_id(group_id), lock=lock)
    if group is None:
        raise _not_found("Group", group_id)
    return group


def _get_group(directory: prov.Directory, request: HttpRequest, group_id: str) -> HttpResponse:
    return _respond(_project(request.GET.dict(), prov.render_group(_group(directory, group_id))))


def _replace_group(directory: prov.Directory, request: HttpRequest, group_id: str) -> HttpResponse:
    doc = group_document(read_json(request))
    with transaction.atomic():
        group = prov.update_group(directory, _group(directory, group_id, lock=True), doc, members_=doc.members)
    return _respond(prov.render_group(group))


def _patch_group(directory: prov.Directory, request: HttpRequest, group_id: str) -> HttpResponse:
    operations = parse_patch(read_json(request))
    with transaction.atomic():
        group = _group(directory, group_id, lock=True)
        patched = apply_patch(prov.render_group(group), operations, GROUP_SCHEMA)
        doc = group_document(patched, max_members=MAX_GROUP_SIZE)
        # After a PATCH the resource is whole: no members left means none, not "unchanged".
        group = prov.update_group(directory, group, doc, members_=doc.members or (), whole=True)
    return _respond(prov.render_group(group))


def _delete_group(directory: prov.Directory, request: HttpRequest, group_id: str) -> HttpResponse:
    with transaction.atomic():
        prov.delete_group(directory, _group(directory, group_id, lock=True))
    return _respond(None, 204)


def _search_everything(directory: prov.Directory, request: HttpRequest) -> HttpResponse:
    # RFC 7644 §3.4.3 allows it; §3.12 names 501 for what a service provider does not implement.
    raise ScimError("searching several resource types at once is not supported: POST /Users/.search or "
                    "/Groups/.search", status=501)  # fmt: skip


def _unknown(directory: prov.Directory, request: HttpRequest, rest: str = "") -> HttpResponse:
    raise ScimError(f"no SCIM endpoint '/{rest}' (Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas)",
                    status=404)  # fmt: skip


service_provider_config = scim_endpoint(get=_service_provider_config)
resource_types = scim_endpoint(get=_resource_types)
schemas = scim_endpoint(get=_schemas)
search = scim_endpoint(post=_search_everything)
users = scim_endpoint(get=_list_users, post=_create_user)
users_search = scim_endpoint(post=_search_users)
groups_search = scim_endpoint(post=_search_groups)
user = scim_endpoint(get=_get_user, put=_replace_user, patch=_patch_user, delete=_delete_user)
groups = scim_endpoint(get=_list_groups, post=_create_group)
group = scim_endpoint(get=_get_group, put=_replace_group, patch=_patch_group, delete=_delete_group)
unknown = scim_endpoint(get=_unknown, post=_unknown, put=_unknown, patch=_unknown, delete=_unknown)
