"""ID token validations per second on one core: Vestibule vs the crypto floor.

Not a test. Run: ``.venv/bin/python benchmarks/oidc_id_token.py [--rounds 5] [--seconds 0.4]``.

For RS256 (RSA-2048) and ES256 (P-256) it measures, in interleaved rounds
(so machine noise hits every candidate alike), and prints medians:

* ``floor``: raw ``cryptography`` signature verification of the same token
  (base64url-decode the signature, verify over the signing input), no JSON,
  no claim checks;
* ``joserfc``: ``jws.deserialize_compact`` with the key (signature only);
* ``vestibule``: :func:`vestibule.oidc.validate_id_token` with static keys;
* ``vestibule+jwks``: the same through :class:`JwksClient` and
  :class:`InMemoryCache` (the production path, keys already cached).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jws, jwt
from joserfc.jwk import ECKey, Key, RSAKey

from vestibule.oidc import InMemoryCache, JwksClient, OidcClientConfig, ProviderMetadata, StaticKeys, validate_id_token

ISSUER = "https://idp.example.test"
NOW = 1_760_000_000.0


def _b64d(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def _floor(token: str, key: Key, alg: str) -> Callable[[], None]:
    public = key.raw_value.public_key()  # type: ignore[union-attr]
    head, payload, sig = token.split(".")
    signing_input = f"{head}.{payload}".encode()

    if alg == "RS256":

        def run() -> None:
            public.verify(_b64d(sig), signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:

        def run() -> None:
            raw = _b64d(sig)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))

    return run


def candidates(alg: str) -> dict[str, Callable[[], None]]:
    key: Key = (
        RSAKey.generate_key(2048, parameters={"kid": "k1"})
        if alg == "RS256"
        else ECKey.generate_key("P-256", parameters={"kid": "k1"})
    )
    claims = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": "client",
        "exp": int(NOW) + 300,
        "iat": int(NOW) - 5,
        "nonce": "n-0S6_WzA2Mj",
        "email": "jane@example.com",
        "name": "Jane Doe",
    }
    token = jwt.encode({"alg": alg, "kid": "k1", "typ": "JWT"}, claims, key, algorithms=[alg])
    public = key.as_dict(private=False)
    config = OidcClientConfig(issuer=ISSUER, client_id="client", client_secret="s")
    meta = ProviderMetadata(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t", f"{ISSUER}/jwks")
    static = StaticKeys([RSAKey.import_key(public) if alg == "RS256" else ECKey.import_key(public)])
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"keys": [public]})))
    cached = JwksClient(ISSUER, meta.jwks_uri, http=http, cache=InMemoryCache(time.monotonic), clock=time.monotonic)

    def ours(keys: StaticKeys | JwksClient) -> Callable[[], None]:
        def run() -> None:
            validate_id_token(token, config=config, metadata=meta, keys=keys, nonce="n-0S6_WzA2Mj", now=NOW)

        return run

    def joserfc_only() -> None:
        jws.deserialize_compact(token, static.current()[0], algorithms=[alg])

    return {
        "floor": _floor(token, key, alg),
        "joserfc": joserfc_only,
        "vestibule": ours(static),
        "vestibule+jwks": ours(cached),
    }


def rate(fn: Callable[[], None], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    print(f"{'alg':6} {'candidate':15} {'validations/s':>14} {'% of floor':>10}")
    for alg in ("RS256", "ES256"):
        cands = candidates(alg)
        for fn in cands.values():
            fn()  # warm up and prove each candidate accepts the token
        samples: dict[str, list[float]] = {name: [] for name in cands}
        for _ in range(args.rounds):
            for name, fn in cands.items():
                samples[name].append(rate(fn, args.seconds))
        floor = statistics.median(samples["floor"])
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"{alg:6} {name:15} {median:14,.0f} {100 * median / floor:9.0f}%")


if __name__ == "__main__":
    main()
