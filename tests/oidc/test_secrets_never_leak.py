"""Secrets (client secret, private key, tokens) never reach error text or redacted config."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from vestibule.oidc import OidcClientConfig, exchange_code
from vestibule.oidc.errors import OidcError

from . import fake_issuer as fi

SECRET = "top-secret-client-secret-value-123"


def _private_key_config() -> OidcClientConfig:
    return fi.config(
        client_secret=None,
        token_endpoint_auth_method="private_key_jwt",
        private_key=json.dumps(fi.keys()["RS256"].as_dict(private=True)),
        private_key_id="rsa-1",
    )


def _needles(cfg: OidcClientConfig) -> list[str]:
    out = [SECRET]
    if cfg.private_key:
        key = json.loads(cfg.private_key)
        out += [key["d"], key["p"], cfg.private_key]
    return out


def _assert_clean(text: str, cfg: OidcClientConfig) -> None:
    for needle in _needles(cfg):
        assert needle not in text


@pytest.mark.parametrize(
    "status_body",
    [
        (401, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"[:10]}),
        (500, None),
        (200, {"nope": True}),
    ],
)
def test_token_errors_do_not_contain_secrets(status_body: tuple[int, Any]) -> None:
    status, body = status_body
    for cfg in (
        fi.config(client_secret=SECRET),
        fi.config(client_secret=SECRET, token_endpoint_auth_method="client_secret_post"),
        _private_key_config(),
    ):
        http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(status, json=body)))
        with pytest.raises(OidcError) as info:
            exchange_code(
                cfg,
                fi.metadata(),
                http=http,
                code="c",
                redirect_uri="https://sp/cb",
                code_verifier="v" * 43,
                now=fi.NOW,
            )
        err = info.value
        _assert_clean(str(err) + repr(err) + json.dumps(err.to_dict()) + repr(err.args), cfg)


def test_config_errors_do_not_echo_private_key() -> None:
    junk = "-----BEGIN PRIVATE KEY-----\nMIIsecretmaterial\n-----END PRIVATE KEY-----"
    with pytest.raises(OidcError) as info:
        fi.config(
            client_secret=None, token_endpoint_auth_method="private_key_jwt", private_key=junk, private_key_id="k"
        )
    assert "secretmaterial" not in str(info.value) and info.value.__cause__ is None


def test_redacted_config_and_repr_hide_secrets() -> None:
    for cfg in (fi.config(client_secret=SECRET), _private_key_config()):
        _assert_clean(json.dumps(cfg.to_dict(redact=True)) + repr(cfg), cfg)


def test_id_token_errors_do_not_contain_the_token_or_nonce() -> None:
    from vestibule.oidc import StaticKeys, validate_id_token

    token = fi.mint(fi.claims(nonce="other"))
    with pytest.raises(OidcError) as info:
        validate_id_token(
            token,
            config=fi.config(),
            metadata=fi.metadata(),
            keys=StaticKeys(list(fi.keys().values())),
            nonce=fi.NONCE,
            now=fi.NOW,
        )
    text = str(info.value) + json.dumps(info.value.to_dict())
    assert token.split(".")[2] not in text and fi.NONCE not in text
