"""The vendored list of public mail domains: what it catches, and the company domains it must not."""

from __future__ import annotations

import pytest

from vestibule.connections.public_mail_domains import is_public_mail_domain, public_mail_domains


@pytest.mark.parametrize(
    "domain",
    ["gmail.com", "googlemail.com", "outlook.com", "outlook.de", "hotmail.com", "hotmail.co.uk", "live.com",
     "live.fr", "yahoo.com", "yahoo.co.jp", "yahoo.com.br", "icloud.com", "me.com", "aol.com", "proton.me",
     "protonmail.com", "gmx.de", "gmx.net", "mail.ru", "yandex.ru", "yandex.com", "qq.com", "163.com",
     "mail.gmail.com", "a.b.outlook.com"],
)  # fmt: skip
def test_public_mail_domains_are_listed(domain: str) -> None:
    assert is_public_mail_domain(domain)


@pytest.mark.parametrize(
    "domain",
    # A provider's name under somebody else's domain is that somebody's; lookalikes are not the provider.
    ["acme.example", "live.acme.com", "outlook.acme.co.uk", "yahoo.example.com", "gmail.com.evil.example",
     "notgmail.com", "gmail.co", "mygmx.de", "hotmail.acme.com.br", "me.example", "google.com", "microsoft.com"],
)  # fmt: skip
def test_company_domains_are_not_public(domain: str) -> None:
    assert not is_public_mail_domain(domain)


def test_the_list_is_parsed_once_and_clean() -> None:
    exact, families = public_mail_domains()
    assert public_mail_domains() is public_mail_domains()
    assert len(exact) > 100 and {"hotmail", "outlook", "live", "yahoo", "gmx", "yandex", "aol"} <= families
    assert all(d == d.strip().lower() and "." in d and " " not in d and "*" not in d for d in exact)
