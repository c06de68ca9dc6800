"""White-labelling: the deployment's brand from the environment, each account's name and logo, on every page."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.template import VariableDoesNotExist
from django.template.loader import get_template
from django.test import Client
from django.urls import NoReverseMatch

from tests.conftest import PASSWORD, password_login
from tests.console.conftest import Browser
from vestibule.accounts.models import Account, AccountLogo
from vestibule.audit.models import AuditEvent
from vestibule.conf.env import ConfigError, load_config
from vestibule.conf.images import ImageRefused, contrast, read_logo, text_on
from vestibule.console.branding import brand

SRC = Path(__file__).resolve().parents[2] / "src" / "vestibule"


# --- Images built byte by byte (no imaging library) ---------------------------------------------


def png(width: int = 2, height: int = 1, *, tail: bytes = b"", text: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x0b\x5c\xad" * width for _ in range(height))
    extra = chunk(b"tEXt", b"Comment\x00" + text) if text else b""
    body = chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body + tail


def jpeg(width: int = 3, height: int = 2) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00" + b"\x12\x34"
    return b"\xff\xd8" + sof + sos + b"\xff\xd9"


def webp(width: int = 5, height: int = 4) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + bits.to_bytes(4, "little") + b"\x00\x00\x00"
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    payload = b"WEBP" + chunk
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


# --- The checks on the bytes --------------------------------------------------------------------


def test_png_jpeg_and_webp_are_read_with_their_size() -> None:
    assert (read_logo(png(7, 3)).content_type, read_logo(png(7, 3)).width, read_logo(png(7, 3)).height) == (
        "image/png", 7, 3,
    )  # fmt: skip
    assert (read_logo(jpeg(3, 2)).content_type, read_logo(jpeg(3, 2)).width) == ("image/jpeg", 3)
    logo = read_logo(webp(5, 4))
    assert (logo.content_type, logo.width, logo.height) == ("image/webp", 5, 4)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (SVG, "SVG logos are not accepted"),
        (HTML, "not a PNG, JPEG or WebP"),
        (png(tail=HTML), "data after the end of the PNG"),
        (png(text=b"<script>alert(1)</script>"), "HTML or SVG markup"),
        (png()[:40], "cut short"),
        (jpeg() + HTML, "end-of-image marker"),
        (webp() + b"<html>", "size field does not match"),
        (png(5000, 1), "each side must be 1 to 4096"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (300 * 1024), "at most 256 KiB"),
        (b"", "empty"),
    ],
)
def test_what_is_not_a_plain_raster_logo_is_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(ImageRefused, match=why):
        read_logo(data)


# --- The deployment's brand from the environment ------------------------------------------------


def config(tmp_path: Path, **env: str) -> Any:
    return load_config({"VESTIBULE_DATA_DIR": str(tmp_path), "VESTIBULE_SECRET_KEY": "k" * 40, **env})


def test_the_brand_settings_are_read_and_checked(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(png())
    cfg = config(tmp_path, VESTIBULE_PRODUCT_NAME="  Acme   Sign-in ", VESTIBULE_LOGO_FILE=str(logo),
                 VESTIBULE_ACCENT_COLOR="#FFCC00")  # fmt: skip
    assert cfg.product_name == "Acme Sign-in"
    assert cfg.logo is not None and cfg.logo.content_type == "image/png"
    assert (cfg.accent, cfg.accent_text) == ("#ffcc00", "#1b1f24")  # yellow: dark text
    assert config(tmp_path, VESTIBULE_ACCENT_COLOR="#0b5cad").accent_text == "#ffffff"
    default = config(tmp_path)
    assert (default.product_name, default.logo, default.accent) == ("Vestibule", None, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VESTIBULE_ACCENT_COLOR": "blue"}, "must be a colour as #rrggbb"),
        ({"VESTIBULE_ACCENT_COLOR": "#12345"}, "must be a colour as #rrggbb"),
        ({"VESTIBULE_ACCENT_COLOR": "#777777"}, "neither white nor black text on it reaches the 4.5:1 contrast"),
        ({"VESTIBULE_PRODUCT_NAME": "x" * 61}, "use at most 60"),
        ({"VESTIBULE_PRODUCT_NAME": "   "}, "is empty"),
        ({"VESTIBULE_PRODUCT_NAME": "Acme\x1b[31m"}, "control characters"),
        ({"VESTIBULE_LOGO_FILE": "/nonexistent/logo.png"}, "cannot be read"),
    ],
)
def test_a_bad_brand_setting_stops_startup_with_one_clear_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        config(tmp_path, **env)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logo.svg", SVG, "SVG logos are not accepted"),
        ("logo.png", HTML, "not a PNG, JPEG or WebP"),  # renamed
        ("logo.png", png() + b"\x00" * (257 * 1024), "at most 256 KiB"),
        ("huge.png", b"\x00" * (5 * 1024 * 1024), "larger than 256 KiB"),
    ],
)
def test_a_logo_file_that_is_no_logo_stops_startup(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(tmp_path, VESTIBULE_LOGO_FILE=str(path))


def test_the_computed_text_colour_reaches_aa_contrast_on_every_accepted_accent() -> None:
    for value in range(0, 256, 5):
        colour = f"#{value:02x}{(255 - value):02x}{(value * 7) % 256:02x}"
        text = text_on(colour)
        if text is not None:
            assert contrast(colour, text) >= 4.5


# --- End-user pages and emails carry the configured name, never "Vestibule" -------------------


def end_user_templates() -> list[Path]:
    roots = [SRC / "login" / "templates", SRC / "people" / "templates", SRC / "provider" / "templates",
             SRC / "signin" / "templates"]  # fmt: skip
    return sorted(p for r in roots for p in r.rglob("*.html"))


def test_no_end_user_template_says_vestibule() -> None:
    offenders = []
    for template in end_user_templates():
        # Template comments are never sent; everything else may be seen.
        text = re.sub(r"{#.*?#}|{% comment %}.*?{% endcomment %}", "", template.read_text(), flags=re.S)
        visible = re.sub(r"{%.*?%}|{{.*?}}", "", text, flags=re.S)
        if "vestibule" in re.sub(r"vestibule/[\w/]+\.html|vestibule_session", "", visible.lower()):
            offenders.append(str(template.relative_to(SRC)))
    assert offenders == []
    assert len(end_user_templates()) >= 20


@pytest.fixture
def renamed(settings: Any) -> Any:
    settings.VESTIBULE_PRODUCT_NAME = "Acme Sign-in"
    settings.VESTIBULE_ACCENT = "#ffcc00"
    settings.VESTIBULE_ACCENT_TEXT = "#1b1f24"
    return settings


def test_every_end_user_template_renders_the_configured_name(renamed: Any, rf: Any) -> None:
    request = rf.get("/login")
    request.csp_nonce = "n"
    rendered: list[str] = []
    for template in end_user_templates():
        name = str(template.relative_to(template.parents[len(template.relative_to(SRC).parts) - 3]))
        if name.startswith("vestibule/_") or "/_" in name:
            continue
        try:
            html = get_template(name).render({"title": "T"}, request)
        except (NoReverseMatch, VariableDoesNotExist, AttributeError, TypeError, ValueError, KeyError):
            # A template that needs its view's objects: its view's tests render it.
            continue
        rendered.append(name)
        assert "Vestibule" not in html.replace("vestibule_", ""), name
        assert "Acme Sign-in" in html, name
    assert len(rendered) >= 10, rendered


def test_the_sign_in_page_shows_the_brand_and_the_accent(renamed: Any, client: Client, db: None) -> None:
    page = client.get("/login").content.decode()
    assert "<title>Sign in · Acme Sign-in</title>" in page
    assert "Vestibule" not in page
    assert "--accent:#ffcc00; --accent-text:#1b1f24; --accent-ink:#1b1f24; }" in page


def test_emails_carry_the_configured_name(
    renamed: Any, client: Client, make_user: Callable[..., Any], make_account: Callable[..., Any]
) -> None:
    from vestibule.login import passwords
    from vestibule.people import members

    user = make_user("ann@acme.test", account="acme")
    passwords.issue_reset_link(user)
    passwords.issue_reset_link(user, reason="switched_to_password")
    members.send_invitation(user, Account.objects.get(slug="acme"), "admin@acme.test")
    members.invite(Account.objects.get(slug="acme"), "new@acme.test", "New", roles=[], projects=[], invited_by="user:a")
    assert len(mail.outbox) == 4
    for message in mail.outbox:
        text = f"{message.subject}\n{message.body}"
        assert "Vestibule" not in text and "Acme Sign-in" in text, text


def test_a_refused_sign_in_says_the_product_name_and_shows_the_accounts_brand(renamed: Any, rf: Any, db: None) -> None:
    from vestibule.domain.pipeline import LoginFailure

    account = Account.objects.create(slug="globex", name="Globex Corp")
    failure = LoginFailure("sso.provisioning_disabled")
    assert "Vestibule" in failure.message  # written once, in the pure package
    request = rf.get("/sso/acs")
    request.csp_nonce = "n"
    html = get_template("vestibule/sso_error.html").render(
        {"title": failure.title, "failure": failure, "trace_id": None, "brand_account": account}, request
    )
    assert "You have no user in Acme Sign-in yet" in html
    assert "Vestibule" not in html.replace("vestibule_", "")
    assert '<p class="account-brand"><span>Globex Corp</span></p>' in html


def test_the_authenticator_app_shows_the_product_name(
    renamed: Any, client: Client, make_user: Callable[..., Any]
) -> None:
    user = make_user("ann@acme.test", account="acme")
    assert password_login(client, user.email, PASSWORD).status_code == 302
    page = client.get("/account/totp").content.decode()
    assert "otpauth://totp/Acme%20Sign-in:" in page and "issuer=Acme%20Sign-in" in page
    assert "Vestibule" not in page.replace("vestibule_", "")


def test_the_chooser_shows_each_accounts_logo_and_name(db: None) -> None:
    account = Account.objects.create(slug="globex", name="Globex Corp")
    from vestibule.console.branding import set_account_logo

    set_account_logo(account, read_logo(png()))
    account.refresh_from_db()
    html = get_template("vestibule/login_choose.html").render(
        {"connections": [_Conn(account, "Okta"), _Conn(Account(slug="b", name="Beta"), "Entra")], "email": "x@y.z"}
    )
    assert f'<img src="{account.logo_url}"' in html and "Globex Corp" in html and "Beta" in html


class _Conn:
    pk = "00000000-0000-0000-0000-000000000000"

    def __init__(self, account: Account, name: str) -> None:
        self.account, self.name = account, name


# --- The console page: an account's display name and logo ---------------------------------------


def test_the_administrator_sets_the_name_and_logo_and_the_sign_in_pages_show_them(
    person: Callable[..., Browser],
) -> None:
    admin = person("admin@acme.test")
    page = admin.get("/console/a/acme/branding/")
    assert page.status_code == 200 and "<h1>Branding</h1>" in page.content.decode()

    renamed = admin.post("/console/a/acme/branding/", {"name": "  Acme   Rockets "}, follow=True)
    assert "Display name changed" in renamed.content.decode()
    assert Account.objects.get(slug="acme").name == "Acme Rockets"

    data = png(9, 4)
    uploaded = admin.post("/console/a/acme/branding/logo", {"logo": _file("logo.png", data)},
                          page="/console/a/acme/branding/", follow=True)  # fmt: skip
    assert "Logo saved (9×4 pixels)" in uploaded.content.decode()
    account = Account.objects.get(slug="acme")
    assert account.logo_url and f'src="{account.logo_url}"' in uploaded.content.decode()  # console header too
    assert AuditEvent.objects.filter(code="account.logo_uploaded", account=account).exists()

    served = Client().get(account.logo_url)
    assert served.status_code == 200 and served.content == data
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served["Content-Security-Policy"]
    assert "immutable" in served["Cache-Control"]

    removed = admin.post("/console/a/acme/branding/logo/remove", page="/console/a/acme/branding/", follow=True)
    assert "removed" in removed.content.decode()
    assert Account.objects.get(slug="acme").logo_digest == "" and not AccountLogo.objects.exists()
    gone = Client().get(account.logo_url)
    assert gone.status_code == 404 and gone["Content-Type"].startswith("text/plain")


def _file(name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("logo.png", HTML, "not a PNG, JPEG or WebP"),
        ("logo.png", png(tail=HTML), "data after the end of the PNG"),
        ("logo.png", png(text=b"<svg onload=alert(1)>"), "HTML or SVG markup"),
        ("logo.svg", SVG, "SVG logos are not accepted"),
        ("logo.png", png() + b"\x00" * (257 * 1024), "at most 256 KiB"),
    ],
)
def test_a_file_that_is_no_logo_is_refused_at_the_field(
    person: Callable[..., Browser], name: str, data: bytes, message: str
) -> None:
    admin = person("admin@acme.test")
    refused = admin.post("/console/a/acme/branding/logo", {"logo": _file(name, data)}, page="/console/a/acme/branding/")
    assert refused.status_code == 400
    html = refused.content.decode()
    assert re.search(r'<p class="field-error" id="id_logo-error">[^<]*' + re.escape(message), html), html
    assert 'aria-invalid="true"' in html
    assert Account.objects.get(slug="acme").logo_digest == "" and not AccountLogo.objects.exists()


def test_a_bad_display_name_is_refused_at_the_field_and_kept(person: Callable[..., Browser]) -> None:
    admin = person("admin@acme.test")
    refused = admin.post("/console/a/acme/branding/", {"name": "x" * 201})
    assert refused.status_code == 400 and 'id="id_name-error"' in refused.content.decode()
    assert "x" * 201 in refused.content.decode()
    assert Account.objects.get(slug="acme").name != "x" * 201


def test_another_accounts_admin_and_a_plain_member_change_nothing(
    person: Callable[..., Browser], make_account: Callable[..., Any]
) -> None:
    from vestibule.console.branding import set_account_logo

    make_account("globex")
    person("admin@acme.test")  # the victim account exists with its admin, and has a logo
    set_account_logo(Account.objects.get(slug="acme"), read_logo(png()))
    before = Account.objects.get(slug="acme").name
    outsider = person("boss@globex.test", account="globex")
    member = person("ann@acme.test", roles=[])
    for browser, status in ((outsider, 404), (member, 403)):
        assert browser.get("/console/a/acme/branding/").status_code == status
        assert browser.post("/console/a/acme/branding/", {"name": "Pwned"}, page="/").status_code == status
        posted = browser.post("/console/a/acme/branding/logo", {"logo": _file("l.png", png())}, page="/")
        assert posted.status_code == status
        assert browser.post("/console/a/acme/branding/logo/remove", page="/").status_code == status
    acme = Account.objects.get(slug="acme")
    assert (acme.name, acme.logo_digest) == (before, read_logo(png()).digest)
    assert AccountLogo.objects.get(account=acme).data == png()


def test_without_the_csrf_token_nothing_changes(person: Callable[..., Browser]) -> None:
    admin = person("admin@acme.test")
    assert admin.client.post("/console/a/acme/branding/", {"name": "Pwned"}).status_code == 403
    assert Account.objects.get(slug="acme").name != "Pwned"


def test_the_logo_endpoints_answer_nothing_for_unknown_or_malformed_digests(db: None) -> None:
    for url in ("/branding/logos/" + "0" * 64, "/branding/logos/<script>", "/branding/logos/" + "a" * 5000,
                "/branding/logo/" + "0" * 64):  # fmt: skip
        response = Client().get(url)
        assert response.status_code == 404 and response["Content-Type"].startswith("text/plain"), url


def test_the_deployment_logo_is_served_by_its_digest(settings: Any, rf: Any) -> None:
    logo = read_logo(jpeg())
    settings.VESTIBULE_LOGO = logo
    request = rf.get("/login")
    url = brand(request)["brand"]["logo_url"]
    assert url == f"/branding/logo/{logo.digest}"
    response = Client().get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response.content == logo.data and response["X-Content-Type-Options"] == "nosniff"


def test_hostile_requests_answer_a_page_never_a_5xx(person: Callable[..., Browser]) -> None:
    admin = person("admin@acme.test")
    for slug in ("nope", "%3Cscript%3E", "a" * 300):
        assert admin.get(f"/console/a/{slug}/branding/").status_code == 404
    missing = admin.post("/console/a/acme/branding/logo", {}, page="/console/a/acme/branding/")
    assert missing.status_code == 400 and 'id="id_logo-error"' in missing.content.decode()
    assert admin.get("/console/a/acme/branding/logo").status_code == 405  # POST only
    wrong_type = admin.post("/console/a/acme/branding/logo", {"logo": "not a file"}, page="/console/a/acme/branding/")
    assert wrong_type.status_code == 400
    assert Account.objects.get(slug="acme").logo_digest == ""


def test_the_invitation_page_shows_the_inviting_accounts_logo_and_name(
    renamed: Any, client: Client, make_account: Callable[..., Any]
) -> None:
    from vestibule.console.branding import set_account_logo
    from vestibule.people import members

    account = make_account("globex")
    account.name = "Globex Corp"
    account.save()
    set_account_logo(account, read_logo(png()))
    members.invite(account, "new@partner.test", "New", roles=[], projects=[], invited_by="user:boss@globex.test")
    (message,) = mail.outbox
    assert "Globex Corp" in str(message.subject) and "Acme Sign-in" in str(message.subject)
    link = re.search(r"https?://[^/\s]+(/join/\S+)", str(message.body))
    assert link, message.body
    page = client.get(link.group(1)).content.decode()
    account.refresh_from_db()
    assert (
        f'<p class="account-brand"><img src="{account.logo_url}" alt="" height="40"><span>Globex Corp</span></p>'
        in page
    )
    assert "Vestibule" not in page.replace("vestibule_", "")
