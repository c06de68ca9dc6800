from __future__ import annotations

import json

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import PASSWORD, password_login
from tests.provider.support import Pkce, authorize_url, code_from, exchange, refresh, register_app


def test_code_flow_end_to_end(client, make_user, db):
    user = make_user("alice@example.com", roles=("analyst",))
    app, secret = register_app()
    pkce = Pkce.make()
    url = authorize_url(app.client_id, pkce, scope="openid email profile organization")
    first = client.get(url)
    assert first.status_code == 302 and first["Location"].startswith("/login?")
    done = password_login(client, user.email, PASSWORD, next_url=url)
    assert done.status_code == 302 and done["Location"] == url, done["Location"]
    code = code_from(client.get(url))
    token = exchange(client, app, secret, code, pkce.verifier)
    assert token.status_code == 200, token.content
    body = token.json()
    jwks = KeySet.import_key_set(client.get("/oauth/jwks").json())
    claims = jwt.decode(body["id_token"], jwks).claims
    assert claims["sub"] == str(user.subject)
    assert claims["email"] == "alice@example.com"
    assert claims["org"] == {"slug": "acme", "name": "Acme"}
    assert claims["roles"] == ["analyst"]
    assert claims["amr"] == ["pwd"]
    info = client.get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == 200, info.content
    assert info.json()["org"]["slug"] == "acme"
    again = refresh(client, app, secret, body["refresh_token"])
    assert again.status_code == 200, again.content
    discovery = client.get("/.well-known/openid-configuration").json()
    print(json.dumps(discovery, indent=1))
