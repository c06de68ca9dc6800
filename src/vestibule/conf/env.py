"""Configuration from ``VESTIBULE_*`` environment variables.

All parsing happens here, once, into a frozen :class:`Config`. A bad value
raises :class:`ConfigError` whose message is one line naming the variable and
what is expected; the CLI prints that line and exits instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from vestibule.conf.images import ImageRefused, Logo, read_logo, text_on
from vestibule.domain.roles import CatalogInvalid, RoleCatalog
from vestibule.outbound import parse_allow_entry

__all__ = ["Config", "ConfigError", "load_config", "VARIABLES"]


class ConfigError(Exception):
    """Invalid configuration; the message is meant for the operator, on one line."""


# name -> (default shown in docs, description); the README table is built from this.
VARIABLES: dict[str, tuple[str, str]] = {
    "VESTIBULE_DATA_DIR": ("./var", "Folder for the embedded database and the generated secret key."),
    "VESTIBULE_DATABASE_URL": (
        "sqlite:///$VESTIBULE_DATA_DIR/vestibule.sqlite3",
        "Database URL: sqlite:///path or postgres://user:pass@host:5432/name.",
    ),
    "VESTIBULE_REDIS_URL": ("(unset)", "redis://host:6379/0; when set, cache, sessions and rate limits use it."),
    "VESTIBULE_BASE_URL": (
        "http://127.0.0.1:8000",
        "Public URL of this deployment, used in SAML/OIDC URLs and emails.",
    ),
    "VESTIBULE_SECRET_KEY": (
        "generated into $VESTIBULE_DATA_DIR/secret_key",
        "Signing and encryption root secret, at least 32 characters. Set it in production.",
    ),
    "VESTIBULE_SECRET_KEY_FALLBACKS": (
        "(unset)",
        "Comma-separated previous secret keys, still accepted for reading sealed secrets during a rotation.",
    ),
    "VESTIBULE_EMAIL_URL": (
        "console:",
        "console: (printed on stdout) or smtp://user:pass@host:587?tls=1 / smtps://...",
    ),
    "VESTIBULE_EMAIL_FROM": ("vestibule@localhost", "Sender address of the emails Vestibule sends."),
    "VESTIBULE_ALLOWED_HOSTS": ("host of VESTIBULE_BASE_URL", "Extra comma-separated host names to serve."),
    "VESTIBULE_TRUSTED_PROXIES": ("0", "How many reverse proxies append to X-Forwarded-For (for client IPs)."),
    "VESTIBULE_DEBUG": ("false", "Django debug pages. Never in production."),
    "VESTIBULE_TEST_IDP": ("false", "Enable the built-in test SAML identity provider (demo only)."),
    "VESTIBULE_ROLE_CATALOG": ("built-in", "Path to a JSON role catalog replacing the default one."),
    "VESTIBULE_LOG_LEVEL": ("INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    "VESTIBULE_LOG_FORMAT": (
        "json",
        "json: one JSON object per log line on stderr (request ID, route, status, account, connection, reason); "
        "text: the same fields as key=value for reading at a terminal.",
    ),
    "VESTIBULE_OUTBOUND_ALLOW": (
        "(unset)",
        "Comma-separated host names, IP addresses or CIDR networks that server-side fetches may reach "
        "although not public, also over plain http (e.g. an internal identity provider).",
    ),
    "VESTIBULE_METRICS_TOKEN": (
        "(unset)",
        "Bearer token that GET /metrics requires (Prometheus text format); unset, /metrics is a 404.",
    ),
    "VESTIBULE_DNS_RESOLVER": (
        "(the system's resolver)",
        "DNS server that domain verification asks for the _vestibule-challenge TXT records: "
        "an IP address with an optional port, e.g. 10.0.0.53, 10.0.0.53:5353 or [2001:db8::53]:53.",
    ),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class EmailConfig:
    backend: str  # "console" or "smtp"
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    redis_url: str | None
    base_url: str
    secret_key: str
    email: EmailConfig
    email_from: str
    allowed_hosts: tuple[str, ...]
    trusted_proxies: int
    debug: bool
    test_idp: bool
    role_catalog_path: Path | None
    log_level: str
    #: VESTIBULE_LOG_FORMAT: "json" (one object per line) or "text" (vestibule.conf.logging).
    log_format: str = "json"
    #: Normalized VESTIBULE_OUTBOUND_ALLOW entries (see vestibule.outbound.parse_allow_entry).
    outbound_allow: tuple[str, ...] = ()
    #: VESTIBULE_METRICS_TOKEN; empty turns GET /metrics off.
    metrics_token: str = ""
    #: VESTIBULE_DNS_RESOLVER as (IP address, port); None asks the system's resolver.
    dns_resolver: tuple[str, int] | None = None
    #: VESTIBULE_PRODUCT_NAME, shown to end users instead of "Vestibule".
    product_name: str = "Vestibule"
    #: VESTIBULE_LOGO_FILE's checked content; None shows the product name alone.
    logo: Logo | None = None
    #: VESTIBULE_ACCENT_COLOR as #rrggbb and the text colour that reads on it; None keeps the built-in one.
    accent: str | None = None
    accent_text: str | None = None

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _email(raw: str) -> EmailConfig:
    parts = urlsplit(raw)
    if parts.scheme == "console":
        return EmailConfig("console")
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ConfigError(f"VESTIBULE_EMAIL_URL={raw!r} must be console: or smtp://host:port or smtps://host:port")
    query = parse_qs(parts.query)
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise ConfigError("VESTIBULE_EMAIL_URL has an invalid port") from None
    return EmailConfig(
        "smtp",
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=query.get("tls", ["0"])[0].lower() in _TRUE,
        use_ssl=parts.scheme == "smtps",
    )


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    configured = env.get("VESTIBULE_SECRET_KEY")
    if configured is not None:
        if len(configured) < 32:
            raise ConfigError("VESTIBULE_SECRET_KEY must be at least 32 characters long")
        return configured
    key_file = data_dir / "secret_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if len(key) < 32:
            raise ConfigError(f"{key_file} holds a secret key shorter than 32 characters")
        return key
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Created with 0600 so the key is never readable by other local users.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
    except FileExistsError:
        return key_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key in {data_dir}: {exc.strerror}") from None


def _outbound_allow(raw: str) -> tuple[str, ...]:
    entries: list[str] = []
    for item in raw.split(","):
        if not item.strip():
            continue
        try:
            entries.append(str(parse_allow_entry(item)))
        except ValueError as exc:
            raise ConfigError(f"VESTIBULE_OUTBOUND_ALLOW: {exc}") from None
    return tuple(entries)


def _metrics_token(raw: str) -> str:
    token = raw.strip()
    if token and len(token) < 16:
        raise ConfigError("VESTIBULE_METRICS_TOKEN must be at least 16 characters long (or unset)")
    return token


def _dns_resolver(raw: str) -> tuple[str, int] | None:
    """``host[:port]`` with an IP address for host: a name would need a resolver to find the resolver."""
    value = raw.strip()
    if not value:
        return None
    problem = (
        f"VESTIBULE_DNS_RESOLVER={raw!r} must be an IP address with an optional port, "
        "e.g. 10.0.0.53, 10.0.0.53:5353, 2001:db8::53 or [2001:db8::53]:5353"
    )
    host, port_text = value, ""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigError(problem)
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ConfigError(problem)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        if not port_text:
            raise ConfigError(problem)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(problem) from None
    if value.startswith("[") and address.version != 6:
        raise ConfigError(problem)
    port = 53
    if port_text:
        if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"VESTIBULE_DNS_RESOLVER={raw!r} has an invalid port; use 1 to 65535")
        port = int(port_text)
    return str(address), port


def _product_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise ConfigError("VESTIBULE_PRODUCT_NAME is empty; unset it to keep 'Vestibule', or give a name")
    if len(name) > 60:
        raise ConfigError(f"VESTIBULE_PRODUCT_NAME is {len(name)} characters long; use at most 60")
    if not name.isprintable():
        raise ConfigError("VESTIBULE_PRODUCT_NAME holds control characters; use printable text only")
    return name


def _logo(raw: str) -> Logo | None:
    if not raw.strip():
        return None
    path = Path(raw).expanduser()
    try:
        if path.stat().st_size > 4 * 1024 * 1024:
            # Not read into memory at all: far above any logo.
            raise ConfigError(f"VESTIBULE_LOGO_FILE={raw!r} is larger than 256 KiB; a logo may be at most 256 KiB")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"VESTIBULE_LOGO_FILE={raw!r} cannot be read: {exc.strerror}") from None
    try:
        return read_logo(data)
    except ImageRefused as exc:
        raise ConfigError(f"VESTIBULE_LOGO_FILE={raw!r} is refused: {exc}") from None


def _accent(raw: str) -> tuple[str | None, str | None]:
    value = raw.strip().lower()
    if not value:
        return None, None
    if len(value) != 7 or value[0] != "#" or any(c not in "0123456789abcdef" for c in value[1:]):
        raise ConfigError(f"VESTIBULE_ACCENT_COLOR={raw!r} must be a colour as #rrggbb, e.g. #0b5cad")
    text = text_on(value)
    if text is None:
        raise ConfigError(
            f"VESTIBULE_ACCENT_COLOR={raw!r}: neither white nor black text on it reaches the 4.5:1 contrast "
            "that WCAG AA asks for button text; choose a darker or a lighter shade"
        )
    return value, text


def _loopback_aliases(host: str) -> tuple[str, ...]:
    # A local deployment answers under every loopback name, as a new user would type it.
    loopback = ("127.0.0.1", "localhost", "[::1]")
    return tuple(h for h in loopback if h != host) if host in loopback or host == "::1" else ()


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    data_dir = Path(env.get("VESTIBULE_DATA_DIR", "./var")).expanduser().resolve()

    database_url = env.get("VESTIBULE_DATABASE_URL") or f"sqlite:///{data_dir / 'vestibule.sqlite3'}"
    scheme = urlsplit(database_url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ConfigError(
            f"VESTIBULE_DATABASE_URL has scheme {scheme!r}; use sqlite:///path or postgres://user@host/db"
        )

    redis_url = env.get("VESTIBULE_REDIS_URL") or None
    if redis_url and urlsplit(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError("VESTIBULE_REDIS_URL must start with redis://, rediss:// or unix://")

    base_url = env.get("VESTIBULE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    base = urlsplit(base_url)
    if base.scheme not in {"http", "https"} or not base.hostname or base.query or base.fragment:
        raise ConfigError(f"VESTIBULE_BASE_URL={base_url!r} must be an http(s) URL such as https://sso.example.com")

    extra_hosts = tuple(h.strip() for h in env.get("VESTIBULE_ALLOWED_HOSTS", "").split(",") if h.strip())

    try:
        trusted_proxies = int(env.get("VESTIBULE_TRUSTED_PROXIES", "0"))
        if not 0 <= trusted_proxies <= 10:
            raise ValueError
    except ValueError:
        raise ConfigError("VESTIBULE_TRUSTED_PROXIES must be a whole number from 0 to 10") from None

    log_level = env.get("VESTIBULE_LOG_LEVEL", "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("VESTIBULE_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    log_format = env.get("VESTIBULE_LOG_FORMAT", "json").strip().lower()
    if log_format not in {"json", "text"}:
        raise ConfigError("VESTIBULE_LOG_FORMAT must be json or text")

    catalog = env.get("VESTIBULE_ROLE_CATALOG")
    catalog_path = Path(catalog).expanduser() if catalog else None
    if catalog_path is not None and not catalog_path.is_file():
        raise ConfigError(f"VESTIBULE_ROLE_CATALOG={catalog!r} is not a readable file")
    if catalog_path is not None:
        # Parsed now so a broken catalog stops startup instead of failing every role check later.
        try:
            RoleCatalog.from_json(catalog_path.read_text())
        except (CatalogInvalid, OSError, UnicodeDecodeError) as exc:
            detail = " ".join(str(exc).split())
            raise ConfigError(f"VESTIBULE_ROLE_CATALOG={catalog!r} is not a valid role catalog: {detail}") from None

    accent, accent_text = _accent(env.get("VESTIBULE_ACCENT_COLOR", ""))
    return Config(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        base_url=base_url,
        secret_key=_secret_key(env, data_dir),
        email=_email(env.get("VESTIBULE_EMAIL_URL", "console:")),
        email_from=env.get("VESTIBULE_EMAIL_FROM", "vestibule@localhost"),
        allowed_hosts=(base.hostname, *_loopback_aliases(base.hostname), *extra_hosts),
        trusted_proxies=trusted_proxies,
        debug=_bool(env, "VESTIBULE_DEBUG", False),
        test_idp=_bool(env, "VESTIBULE_TEST_IDP", False),
        role_catalog_path=catalog_path,
        log_level=log_level,
        log_format=log_format,
        outbound_allow=_outbound_allow(env.get("VESTIBULE_OUTBOUND_ALLOW", "")),
        metrics_token=_metrics_token(env.get("VESTIBULE_METRICS_TOKEN", "")),
        dns_resolver=_dns_resolver(env.get("VESTIBULE_DNS_RESOLVER", "")),
        product_name=_product_name(env.get("VESTIBULE_PRODUCT_NAME", "Vestibule")),
        logo=_logo(env.get("VESTIBULE_LOGO_FILE", "")),
        accent=accent,
        accent_text=accent_text,
    )
