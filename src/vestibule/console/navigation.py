"""The console's menu: what each person sees is what their roles in the account allow.

Each item names the URL the page is served at and the admin roles that open
it (any one is enough); the page itself checks the same roles, so hiding an
item is a courtesy, not the protection. The operator's items sit above every account.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from vestibule.accounts.models import Account
from vestibule.authority.principal import ADMINISTRATOR, SSO_ADMIN, USER_MANAGER, Principal


@dataclass(frozen=True)
class Item:
    label: str
    url_name: str
    roles: tuple[str, ...] = ()
    group: str = ""


ACCOUNT_ITEMS = (
    Item("Overview", "console:account", group="Account"),
    Item("Users", "console:users", (ADMINISTRATOR, USER_MANAGER), "People"),
    Item("Pending approval", "console:pending", (ADMINISTRATOR, USER_MANAGER), "People"),
    Item("Invitations", "console:invitations", (ADMINISTRATOR, USER_MANAGER), "People"),
    Item("Projects", "console:projects", (ADMINISTRATOR, USER_MANAGER), "People"),
    Item("Connections", "console:connections", (SSO_ADMIN,), "Single sign-on"),
    Item("Mapping roles", "console:mapping-roles", (SSO_ADMIN,), "Single sign-on"),
    Item("Preferences", "console:sso-preferences", (SSO_ADMIN,), "Single sign-on"),
    Item("Setup links", "console:setup-links", (SSO_ADMIN,), "Single sign-on"),
    Item("Domains", "console:domains", (ADMINISTRATOR, SSO_ADMIN), "Single sign-on"),
    Item("Login traces", "console:traces", (SSO_ADMIN,), "Diagnostics"),
    Item("Audit log", "console:audit", (ADMINISTRATOR, USER_MANAGER, SSO_ADMIN), "Diagnostics"),
    Item("API keys", "console:api-keys", (ADMINISTRATOR,), "Settings"),
    Item("Directory sync (SCIM)", "console:scim-tokens", (ADMINISTRATOR,), "Settings"),
    Item("Branding", "console:branding", (ADMINISTRATOR,), "Settings"),
)

OPERATOR_ITEMS = (
    Item("Accounts", "console:operator-accounts", group="Deployment"),
    Item("Domain claims", "console:operator-domains", group="Deployment"),
    Item("Deployment checks", "console:operator-checks", group="Deployment"),
)


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    current: bool


def _link(item: Item, current: str, *args: str) -> Link:
    return Link(item.label, reverse(item.url_name, args=args), current == item.url_name)


def account_menu(acting: Principal, account: Account, current: str) -> list[tuple[str, list[Link]]]:
    held = acting.roles_in(account)
    groups: dict[str, list[Link]] = {}
    for item in ACCOUNT_ITEMS:
        if item.roles and not held & set(item.roles):
            continue
        groups.setdefault(item.group, []).append(_link(item, current, account.slug))
    return list(groups.items())


def operator_menu(acting: Principal, current: str) -> list[tuple[str, list[Link]]]:
    if not acting.is_operator:
        return []
    return [("Deployment", [_link(item, current) for item in OPERATOR_ITEMS])]
