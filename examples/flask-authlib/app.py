"""A Flask application that signs people in with Vestibule, on Authlib's OpenID Connect client.

Run it against ``vestibule demo`` with ``make -C examples/flask-authlib run``
(see README.md). Everything Vestibule-specific is in ``load_client_settings``
and the ``organization`` scope; the rest is Authlib's standard client:
discovery, authorization code with PKCE (S256), the ID token checked against
the provider's JWKS, ``iss``, ``aud`` and ``nonce``.

Settings come from the file ``vestibule demo`` writes
(``$VESTIBULE_DATA_DIR/demo-applications.json``), or, to try it against
another Vestibule, from ``OIDC_ISSUER``, ``OIDC_CLIENT_ID``,
``OIDC_CLIENT_SECRET`` and ``OIDC_REDIRECT_URI``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template, request, session, url_for

HERE = Path(__file__).resolve().parent
# Where `vestibule demo`, started from the repository root, writes the credentials (its data dir is ./var).
DEFAULT_APPLICATIONS_FILE = HERE.parent.parent / "var" / "demo-applications.json"
APPLICATION_KEY = "flask-authlib"
SCOPES = "openid email profile organization"


def load_client_settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """issuer, client_id, client_secret and redirect_uri: from OIDC_* variables, else the demo's file."""
    env = dict(os.environ if environ is None else environ)
    if env.get("OIDC_ISSUER"):
        return {
            "issuer": env["OIDC_ISSUER"].rstrip("/"),
            "client_id": env["OIDC_CLIENT_ID"],
            "client_secret": env.get("OIDC_CLIENT_SECRET", ""),
            "redirect_uri": env.get("OIDC_REDIRECT_URI", "http://127.0.0.1:5001/callback"),
            "post_logout_redirect_uri": env.get("OIDC_POST_LOGOUT_REDIRECT_URI", "http://127.0.0.1:5001/"),
        }
    path = Path(env.get("VESTIBULE_DEMO_APPLICATIONS") or DEFAULT_APPLICATIONS_FILE)
    try:
        entry = json.loads(path.read_text())["applications"][APPLICATION_KEY]
    except FileNotFoundError:
        raise SystemExit(
            f"{path} does not exist: start `vestibule demo` (make demo) first, or point "
            "VESTIBULE_DEMO_APPLICATIONS at the demo-applications.json in its data directory"
        ) from None
    except (KeyError, ValueError) as exc:
        raise SystemExit(
            f"{path} has no usable '{APPLICATION_KEY}' entry ({exc!r}); run `vestibule demo` again"
        ) from None
    return {
        "issuer": entry["issuer"].rstrip("/"),
        "client_id": entry["client_id"],
        "client_secret": entry["client_secret"],
        "redirect_uri": entry["redirect_uris"][0],
        "post_logout_redirect_uri": (entry.get("post_logout_redirect_uris") or [""])[0],
    }


def create_app(client: dict[str, Any]) -> Flask:
    app = Flask(__name__, root_path=str(HERE))  # templates/ beside this file, however it is started
    app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
    # Vestibule and the other example run on the same host (127.0.0.1), and browsers share
    # cookies across ports: a cookie name of its own keeps each program's session apart.
    app.config.update(SESSION_COOKIE_NAME="flask_example_session", SESSION_COOKIE_SAMESITE="Lax")

    oauth = OAuth(app)
    oauth.register(
        "vestibule",
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        server_metadata_url=f"{client['issuer']}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256"},
    )
    vestibule = oauth.vestibule

    @app.get("/")
    def home() -> str:
        user = session.get("user")
        return render_template("index.html", user=user, claims_json=json.dumps(user, indent=2) if user else "")

    @app.get("/login")
    def login() -> Any:
        # Optional hints Vestibule routes with before showing any screen: an email sends the
        # person straight to their organization's identity provider, as does an organization slug.
        extra = {name: request.args[name].strip() for name in ("login_hint", "organization") if request.args.get(name)}
        return vestibule.authorize_redirect(client["redirect_uri"], **extra)

    @app.get("/callback")
    def callback() -> Any:
        try:
            token = vestibule.authorize_access_token()
        except OAuthError as exc:
            return render_template("error.html", error=exc.error, description=exc.description), 400
        # The ID token's claims, checked by Authlib (signature, iss, aud, exp, nonce).
        session["user"] = dict(token["userinfo"])
        session["id_token"] = token["id_token"]
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout() -> Any:
        id_token = session.get("id_token")
        session.clear()
        if not id_token:
            return redirect(url_for("home"))
        # RP-initiated logout: Vestibule ends its own session too, then sends the browser back here.
        end_session = vestibule.load_server_metadata().get("end_session_endpoint")
        if not end_session:
            return redirect(url_for("home"))
        query = {
            "id_token_hint": id_token,
            "client_id": client["client_id"],
            "post_logout_redirect_uri": client["post_logout_redirect_uri"],
        }
        return redirect(f"{end_session}?{urlencode(query)}")

    return app


def main() -> None:
    client = load_client_settings()
    # The redirect URI registered with Vestibule says where this app must listen.
    where = urlsplit(client["redirect_uri"])
    host, port = where.hostname or "127.0.0.1", where.port or 5001
    print(f"Flask example (Authlib) on http://{host}:{port}/ signing in with {client['issuer']}", flush=True)
    create_app(client).run(host=host, port=port, debug=False)


if __name__ == "__main__":
    main()
