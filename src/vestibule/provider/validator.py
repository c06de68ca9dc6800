"""django-oauth-toolkit's request validator, taught Vestibule's rules.

What changes from the library's own: every grant and token points at the
:class:`~vestibule.provider.models.Authorization` it came from; ID tokens are
signed with the database keys (:mod:`vestibule.provider.keys`) and carry
``auth_time``, ``amr``, ``acr`` and ``sid`` of that sign-in; a redeemed code
is kept so that its replay revokes what the first redemption got; a refresh
judges the person again; revoked applications authenticate nowhere.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import refresh_token_expire_timedelta
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors

from vestibule.provider import authorizations, keys
from vestibule.provider.models import AccessToken, Application, Authorization, Grant, IDToken, RefreshToken

# The request attribute the authorize view hands its context through (oauthlib copies credentials onto it).
CONTEXT = "vestibule_context"
AUTHORIZATION = "vestibule_authorization"
# The organization claims read while judging the sign-in, reused for the ID token.
ORGANIZATION = "vestibule_organization"


# client_id -> client type. A client's type never changes (the API refuses to), so a process may remember it.
_client_types: dict[str, str] = {}


def pkce_required(client_id: str) -> bool:
    """PKCE is required of public clients (S256 only, everywhere: the ``plain`` method is refused)."""
    client_type = _client_types.get(client_id)
    if client_type is None:
        client_type = Application.objects.filter(client_id=client_id).values_list("client_type", flat=True).first()
        if client_type is None:
            return True
        if len(_client_types) > 10_000:
            _client_types.clear()
        _client_types[client_id] = client_type
    return client_type != Application.CLIENT_CONFIDENTIAL


class Validator(OAuth2Validator):
    # --- clients -------------------------------------------------------------------------
    def _load_application(self, client_id: str, request: Any) -> Application | None:
        application: Application | None = super()._load_application(client_id, request)
        if application is not None and application.revoked_at is not None:
            request.client = None
            return None
        return application

    # --- the authorization endpoint --------------------------------------------------------
    def is_pkce_required(self, client_id: str, request: Any) -> bool:
        # PKCE_REQUIRED is not among the library's import strings: the dotted path in the settings
        # stays a string, which is not callable and never ``is True``, so PKCE was optional for all.
        return pkce_required(client_id)

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        """Scope values Vestibule does not know (``address``, ``phone``, ``offline_access``...) are dropped, not
        refused (OpenID Connect Core 3.1.2.1: ignored); the token response's ``scope`` says what was granted."""
        available = set(get_scopes_backend().get_available_scopes(application=client, request=request))
        known = [s for s in scopes if s in available]
        request.scopes = known
        return bool(known)

    def validate_redirect_uri(self, client_id: str, redirect_uri: str, request: Any, *args: Any, **kwargs: Any) -> bool:
        # Character for character (OpenID Connect Core 3.1.2.1): the library's match ignores the
        # host's case and, on loopback, the port (RFC 8252), where any local process could listen.
        return redirect_uri in request.client.redirect_uri_list()

    def save_authorization_code(
        self, client_id: str, code: dict[str, str], request: Any, *args: Any, **kwargs: Any
    ) -> None:
        context = getattr(request, CONTEXT)
        # One transaction: the library may still refuse the code (a "plain" PKCE challenge), and a
        # sign-in without its code would stay open forever (and be announced at back-channel logout).
        with transaction.atomic():
            authorization = authorizations.begin(
                user=request.user, application=request.client, session=context["session"], account=context["account"]
            )
            grant = self._create_authorization_code(request, code)
            Grant.objects.filter(pk=grant.pk).update(authorization=authorization)

    def validate_silent_authorization(self, request: Any) -> bool:
        # Applications are registered by the operator (first-party): there is no consent to ask for.
        return True

    # Both checks below run twice: when the view first validates the request, before it has looked at
    # the session (no user on the request yet: the view itself answers prompt=none without a session),
    # and when the code is made, for the person signed in. Demanding the person at the first pass
    # refused every prompt=none and every id_token_hint of a signed-in person with login_required.
    def validate_silent_login(self, request: Any) -> bool:
        user = getattr(request, "user", None)
        return user is None or bool(user.is_authenticated)

    def validate_user_match(self, id_token_hint: str | None, scopes: Any, claims: Any, request: Any) -> bool:
        """An ``id_token_hint`` must be one of ours and name the person signed in now."""
        if not id_token_hint:
            return True
        try:
            hinted = keys.verify_issued(id_token_hint)
        except keys.TokenRejected:
            return False
        user = getattr(request, "user", None)
        return user is None or (user.is_authenticated and hinted.get("sub") == str(user.subject))

    # --- the token endpoint: authorization code ------------------------------------------
    def _grant(self, code: str, request: Any) -> Grant | None:
        """The code's grant, read once per token request (oauthlib asks for it several times, some before
        the client is authenticated: :meth:`validate_code` checks that it belongs to the client)."""
        cached: Grant | None = getattr(request, "_vestibule_grant", None)
        if cached is None or cached.code != code:
            cached = (
                Grant.objects.select_related("authorization__user", "authorization__application", "user")
                .filter(code=code)
                .first()
            )
            request._vestibule_grant = cached
        return cached

    def validate_code(self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        """Redeem the code once: the claim is one UPDATE, so two concurrent redemptions cannot both win.

        A second redemption is a replay (the code leaked): the sign-in the
        first one received is ended, its tokens revoked (RFC 6749 section 4.1.2).
        """
        grant = self._grant(code, request)
        # A code is redeemed only by the client it was issued to.
        if grant is None or grant.authorization is None or grant.application_id != client.pk:
            return False
        claimed = Grant.objects.filter(pk=grant.pk, redeemed_at__isnull=True).update(redeemed_at=timezone.now())
        if not claimed:
            authorizations.end([grant.authorization], "code_replay")
            return False
        if grant.is_expired():
            return False
        judgement = authorizations.judge(grant.authorization)
        if judgement.refusal is not None:
            return False
        setattr(request, ORGANIZATION, judgement.organization)
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        setattr(request, AUTHORIZATION, grant.authorization)
        return True

    def invalidate_authorization_code(self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any) -> None:
        # validate_code marked it redeemed; the row stays until it expires so that a replay is recognised.
        return None

    def get_code_challenge(self, code: str, request: Any) -> str | None:
        grant = self._grant(code, request)
        return (grant.code_challenge or None) if grant else None

    def get_code_challenge_method(self, code: str, request: Any) -> str | None:
        grant = self._grant(code, request)
        return (grant.code_challenge_method or None) if grant else None

    def get_authorization_code_nonce(self, client_id: str, code: str, redirect_uri: str, request: Any) -> str | None:
        grant = self._grant(code, request)
        return (grant.nonce or None) if grant else None

    def get_authorization_code_scopes(self, client_id: str, code: str, redirect_uri: str, request: Any) -> list[str]:
        grant = self._grant(code, request)
        return grant.scope.split() if grant else []

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        grant = self._grant(code, request)
        return grant is not None and grant.redirect_uri == redirect_uri

    # --- the token endpoint: refresh --------------------------------------------------------
    def validate_refresh_token(self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any) -> bool:
        """The refresh token, its sign-in and its person, read in one query and judged as they are now.

        This replaces the library's check with the same rules for this
        configuration (rotation on, reuse protection on, no grace period):
        a token that was already rotated away or revoked, presented again,
        revokes its whole family and ends the sign-in it belonged to.
        """
        checksum = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
        rt = (
            RefreshToken.objects.select_related("access_token", "authorization__user", "authorization__application")
            .filter(token_checksum=checksum)
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if rt is None:
            return False
        authorization = rt.authorization
        if rt.revoked is not None:
            RefreshToken.revoke_family(rt.token_family)
            if authorization is not None:
                authorizations.end([authorization], "refresh_token_reuse")
            return False
        if rt.access_token is None or authorization is None or rt.application_id != client.pk:
            return False
        lifetime = refresh_token_expire_timedelta()
        if lifetime and rt.access_token.expires + lifetime <= timezone.now():
            return False
        judgement = authorizations.judge(authorization)
        if judgement.refusal is not None:
            authorizations.end([authorization], judgement.refusal)
            return False
        request.user = authorization.user
        request.refresh_token = refresh_token
        request.refresh_token_instance = rt
        setattr(request, AUTHORIZATION, authorization)
        setattr(request, ORGANIZATION, judgement.organization)
        return True

    def _save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        """Rotation in four statements: claim the presented refresh token, drop its access token, write the new pair.

        The claim is one conditional UPDATE, so of two refreshes racing with
        the same token only one wins; the loser is a reuse like any other.
        (The library's rotation re-reads and locks the same rows several times.)
        """
        previous = getattr(request, "refresh_token_instance", None)
        if (
            request.grant_type != "refresh_token"
            or not isinstance(previous, RefreshToken)
            or not token.get("refresh_token")
        ):
            super()._save_bearer_token(token, request, *args, **kwargs)
            return
        if "scope" not in token:
            raise errors.InvalidScopeError(request=request)
        now = timezone.now()
        claimed = RefreshToken.objects.filter(pk=previous.pk, revoked__isnull=True).update(
            revoked=now, updated=now, access_token=None
        )
        if not claimed:
            authorizations.end([getattr(request, AUTHORIZATION)], "refresh_token_reuse")
            raise errors.InvalidGrantError(request=request)
        if previous.access_token_id is not None:
            # One plain DELETE: the UPDATE above already cleared the one reference to this row
            # (the refresh token's), which Django's collector would otherwise read and clear again.
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {AccessToken._meta.db_table} WHERE id = %s", [previous.access_token_id])
        expires = now + timedelta(seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS))
        access_token = self._create_access_token(expires, request, token, source_refresh_token=previous)
        self._create_refresh_token(request, token["refresh_token"], access_token, previous)

    # --- tokens ----------------------------------------------------------------------------
    def _create_access_token(
        self, expires: Any, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> AccessToken:
        id_token = getattr(request, "id_token", None)
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token if isinstance(id_token, IDToken) else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            authorization=getattr(request, AUTHORIZATION, None),
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        return access_token

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> RefreshToken:
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4(),
            resource=getattr(request, "resource", []),
            authorization=getattr(request, AUTHORIZATION, None),
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def _save_id_token(self, jti: str, request: Any, expires: Any, *args: Any, **kwargs: Any) -> IDToken:
        return IDToken.objects.create(
            user=request.user,
            scope=request.scope or " ".join(request.scopes),
            expires=expires,
            jti=jti,
            application=request.client,
            authorization=getattr(request, AUTHORIZATION, None),
        )

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        # Never in the query string (RFC 9700 2.4, RFC 6750 5.3: it lands in logs and Referer headers);
        # the library refuses it for protected resources but not at its own userinfo endpoint.
        if "access_token" in parse_qs(urlsplit(request.uri or "").query):
            return False
        if not super().validate_bearer_token(token, scopes, request):
            return False
        access_token = request.access_token
        return bool(access_token.user is not None and access_token.user.is_active)

    # --- claims and the ID token ----------------------------------------------------------
    def get_oidc_claims(self, token: Any, token_handler: Any, request: Any) -> dict[str, Any]:
        return authorizations.claims(
            getattr(request, AUTHORIZATION), request.scopes, getattr(request, ORGANIZATION, None)
        )

    def get_userinfo_claims(self, request: Any) -> dict[str, Any]:
        authorization = request.access_token.authorization
        judgement = authorizations.judge(authorization) if authorization is not None else None
        if judgement is None or judgement.refusal is not None:
            return {"sub": str(request.access_token.user.subject)}
        return authorizations.claims(authorization, request.scopes, judgement.organization)

    def get_discovery_claims(self, request: Any) -> list[str]:
        return ["sub", "email", "email_verified", "name", "org", "roles", "projects", "auth_time", "amr", "acr", "sid"]

    def get_id_token_dictionary(self, token: Any, token_handler: Any, request: Any) -> tuple[dict[str, Any], Any]:
        authorization: Authorization = getattr(request, AUTHORIZATION)
        claims = self.get_oidc_claims(token, token_handler, request)
        expires = timezone.now() + timedelta(seconds=oauth2_settings.ID_TOKEN_EXPIRE_SECONDS)
        claims.update(
            iss=self.get_oidc_issuer_endpoint(request),
            exp=int(expires.timestamp()),
            auth_time=int(authorization.auth_time.timestamp()),
            jti=str(uuid.uuid4()),
            sid=str(authorization.sid),
            amr=authorization.amr,
            acr=authorization.acr,
        )
        return claims, expires

    def finalize_id_token(self, id_token: dict[str, Any], token: Any, token_handler: Any, request: Any) -> str:
        claims, expires = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        row = self._save_id_token(id_token["jti"], request, expires)
        request.access_token = row
        request.id_token = row
        return keys.sign(id_token)

    # Tokens handed back (an ``id_token_hint``) are verified with the provider's own keys and
    # algorithms only; the library's per-application key lookup is never used.
    def _get_key_for_token(self, token: str) -> None:
        return None

    def _load_id_token(self, token: str) -> IDToken | None:
        try:
            claims = keys.verify(token)
        except keys.TokenRejected:
            return None
        if claims.get("exp", 0) < timezone.now().timestamp() or not isinstance(claims.get("jti"), str):
            return None
        return IDToken.objects.filter(jti=claims["jti"]).first()
