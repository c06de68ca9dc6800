"""Starts the real oidc-provider (Node) for the interop and end-to-end tests; see oidc_provider/README.md.

:func:`launch_provider` is the one launcher: it writes the settings JSON,
starts ``node server.mjs``, waits for ``READY <issuer>`` and stops the
process afterwards. The interop suite runs its own provider per module
(``oidc_op``); the e2e OIDC driver shares one per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, Key, RSAKey

HERE = Path(__file__).parent / "oidc_provider"
REDIRECT_URI = "http://127.0.0.1:9/sso/oidc/interop/callback"  # never contacted
SECRET_BASIC = "basic secret:with%odd+chars/="
SECRET_POST = "post-secret-value"
ACCOUNTS = {
    "alice": {
        "claims": {"email": "alice@tenant-a.example", "email_verified": True, "name": "Alice A", "tid": "tenant-a"},
        "userinfo": {"groups": ["admins", "staff"]},
    },
    "bob": {
        "claims": {"email": "bob@tenant-b.example", "email_verified": True, "name": "Bob B", "tid": "tenant-b"},
        "userinfo": {"groups": ["staff"]},
    },
}


@dataclass
class ProviderProcess:
    """A running ``server.mjs``; ``admin`` reaches its test-only ``/__admin/*`` endpoints."""

    issuer: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = httpx.request(method, f"{self.issuer}/__admin/{path}", json=body, timeout=5)
        response.raise_for_status()
        return response

    def rotate_keys(self, jwks: dict[str, Any] | None = None) -> None:
        """Switch to ``jwks`` (private JWKs, signing key first), or to the settings' ``rotated_jwks``."""
        self.admin("POST", "rotate", {"jwks": jwks} if jwks else None)

    def request_counts(self) -> dict[str, int]:
        """How many requests each path of the provider served so far."""
        counts: dict[str, int] = self.admin("GET", "requests").json()
        return counts


@dataclass
class InteropProvider:
    issuer: str
    rp_jwt_key: Key
    server: ProviderProcess

    def rotate_keys(self) -> None:
        self.server.rotate_keys()


def _clients(rp_jwt_key: Key) -> list[dict[str, Any]]:
    common = {"redirect_uris": [REDIRECT_URI], "grant_types": ["authorization_code"], "response_types": ["code"]}
    return [
        {
            "client_id": "rp-basic",
            "client_secret": SECRET_BASIC,
            "token_endpoint_auth_method": "client_secret_basic",
            **common,
        },
        {
            "client_id": "rp-post",
            "client_secret": SECRET_POST,
            "token_endpoint_auth_method": "client_secret_post",
            **common,
        },
        {
            "client_id": "rp-jwt",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [rp_jwt_key.as_dict(private=False)]},
            **common,
        },
        {
            "client_id": "rp-es256",
            "client_secret": SECRET_BASIC,
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "ES256",
            **common,
        },
    ]


def _ensure_node_modules() -> None:
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    subprocess.run([npm, "ci", "--prefix", str(HERE), "--no-audit", "--no-fund"], check=True, timeout=300)


@contextmanager
def launch_provider(settings: dict[str, Any], workdir: Path) -> Iterator[ProviderProcess]:
    """Run ``server.mjs`` with ``settings`` until the block ends; skips the test without node."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    _ensure_node_modules()
    path = workdir / "settings.json"
    path.write_text(json.dumps(settings))
    proc = subprocess.Popen(
        [node, str(HERE / "server.mjs"), str(path)],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NODE_ENV": "test"},
    )
    assert proc.stdout is not None
    ready: list[str] = []
    log: list[str] = []
    got_ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if line.startswith("READY ") and not ready:
                ready.append(line.split()[1])
                got_ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not got_ready.wait(30):
            raise RuntimeError("oidc-provider did not start:\n" + "".join(log))
        issuer = ready[0]
        httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).raise_for_status()
        yield ProviderProcess(issuer=issuer, process=proc, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def oidc_op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteropProvider]:
    rsa1 = RSAKey.generate_key(2048, parameters={"kid": "op-rsa-1", "use": "sig", "alg": "RS256"})
    ec1 = ECKey.generate_key("P-256", parameters={"kid": "op-ec-1", "use": "sig", "alg": "ES256"})
    rsa2 = RSAKey.generate_key(2048, parameters={"kid": "op-rsa-2", "use": "sig", "alg": "RS256"})
    rp_jwt_key = RSAKey.generate_key(2048, parameters={"kid": "rp-jwt-1"})
    settings = {
        "clients": _clients(rp_jwt_key),
        "accounts": ACCOUNTS,
        "jwks": {"keys": [k.as_dict(private=True) for k in (rsa1, ec1)]},
        "rotated_jwks": {"keys": [k.as_dict(private=True) for k in (rsa2, rsa1, ec1)]},
    }
    with launch_provider(settings, tmp_path_factory.mktemp("oidc-op")) as server:
        yield InteropProvider(issuer=server.issuer, rp_jwt_key=rp_jwt_key, server=server)
