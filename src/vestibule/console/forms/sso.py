"""Forms of the SSO authorization screens (seed 002): a mapping role's name and grants per scope."""

from __future__ import annotations

from typing import Any

from django import forms

from vestibule.accounts.models import Account, Project
from vestibule.accounts.roles import get_catalog

# Rows shown at most (the account and 49 projects in one mapping role is already far beyond use).
MAX_ROWS = 50
NAME_HELP = (
    "Exactly the value your identity provider sends in the role_mapping claim (for example the user's department). "
    "Letters, spaces and case must match."
)


def scope_choices(account: Account) -> list[tuple[str, str]]:
    projects = Project.objects.filter(account=account).order_by("name")[:1000]
    return [
        ("", "No scope (row not used)"),
        ("account", f"Account: {account.name}"),
        *[(f"project:{p.slug}", f"Project: {p.name}") for p in projects],
    ]


def rows_wanted(data: Any, existing: int) -> int:
    """How many scope rows the form shows: what the person had, one more on request, within bounds."""
    try:
        rows = int(str(data.get("rows", ""))[:4]) if data is not None else 0
    except ValueError:
        rows = 0
    rows = max(rows, existing + 1, 1)
    if data is not None and data.get("more"):
        rows += 1
    return min(rows, MAX_ROWS)


class MappingRoleForm(forms.Form):
    """Name, then rows of (scope, roles); each used row is one scope of the mapping role."""

    name = forms.CharField(label="Mapping role name", max_length=200, help_text=NAME_HELP)

    def __init__(self, data: Any = None, *, account: Account, rows: int, initial: dict[str, Any] | None = None) -> None:
        super().__init__(data, initial=initial)
        self.rows = rows
        scopes = scope_choices(account)
        catalog = get_catalog()
        roles = [(name, name) for name in sorted(catalog.roles)]
        for i in range(rows):
            self.fields[f"grant-{i}-scope"] = forms.ChoiceField(label=f"Scope {i + 1}", choices=scopes, required=False)
            self.fields[f"grant-{i}-roles"] = forms.MultipleChoiceField(
                label=f"Roles in scope {i + 1}", choices=roles, required=False, widget=forms.CheckboxSelectMultiple
            )
        # Row of each grant sent to the rules, so their errors land on the row that was typed.
        self.row_of: list[int] = []

    def row_fields(self) -> list[tuple[Any, Any]]:
        return [(self[f"grant-{i}-scope"], self[f"grant-{i}-roles"]) for i in range(self.rows)]

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name", "")).strip()
        if not name:
            raise forms.ValidationError("Enter the mapping role's name.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        seen: dict[str, int] = {}
        self.row_of = []
        for i in range(self.rows):
            scope = data.get(f"grant-{i}-scope") or ""
            roles = data.get(f"grant-{i}-roles") or []
            if not scope and not roles:
                continue
            if not scope:
                self.add_error(
                    f"grant-{i}-scope", "Choose the scope these roles are granted in (the account or a project)."
                )
                continue
            if scope in seen:
                self.add_error(
                    f"grant-{i}-scope",
                    f"This scope is already used in scope {seen[scope] + 1}: each scope can be used only once per "
                    "mapping role. Put all its roles in one row.",
                )
                continue
            seen[scope] = i
            if not roles:
                self.add_error(f"grant-{i}-roles", "Choose at least one role for this scope.")
                continue
            self.row_of.append(i)
        if not seen and not self.errors:
            self.add_error("grant-0-scope", "Choose at least one scope (the account or a project) and its roles.")
        return data

    def grants(self) -> list[dict[str, Any]]:
        return [
            {"scope": self.cleaned_data[f"grant-{i}-scope"], "roles": list(self.cleaned_data[f"grant-{i}-roles"])}
            for i in self.row_of
        ]

    def rule_error(self, field: str, detail: str) -> None:
        """Put a ``MappingRoleError`` (fields as the API names them: ``grants[2].roles``) on the row typed."""
        message = detail[:1].upper() + detail[1:] + "."
        if field.startswith("grants[") and "]." in field:
            index_text, _, part = field.removeprefix("grants[").partition("].")
            try:
                row = self.row_of[int(index_text)]
            except (ValueError, IndexError):
                row = 0
            self.add_error(f"grant-{row}-{'roles' if part == 'roles' else 'scope'}", message)
        elif field == "name":
            self.add_error("name", message)
        else:
            self.add_error("grant-0-scope", message)


def initial_of(name: str, grants: list[dict[str, Any]]) -> dict[str, Any]:
    initial: dict[str, Any] = {"name": name}
    for i, grant in enumerate(grants):
        initial[f"grant-{i}-scope"] = grant["scope"]
        initial[f"grant-{i}-roles"] = list(grant["roles"])
    return initial


def posted(data: Any, rows: int) -> dict[str, Any]:
    """The typed values as a form's initial data (a re-shown form that is not judged yet)."""
    initial: dict[str, Any] = {"name": str(data.get("name", ""))[:200]}
    for i in range(rows):
        initial[f"grant-{i}-scope"] = str(data.get(f"grant-{i}-scope", ""))[:80]
        initial[f"grant-{i}-roles"] = [str(r)[:64] for r in data.getlist(f"grant-{i}-roles")[:100]]
    return initial


class AuthorizationForm(forms.Form):
    """Turning SSO authorization on or off for one connection; ``confirm`` applies it (after the warnings)."""

    connection = forms.CharField(max_length=64)
    sso_authorization = forms.BooleanField(label="Enable Single Sign-On Authorization", required=False)
    confirm = forms.BooleanField(required=False)
