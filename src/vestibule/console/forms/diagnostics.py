"""Forms of the diagnostics screens: the trace and audit filters, API keys, domains and their shares."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from django import forms
from django.utils import timezone

from vestibule.audit.queries import EventFilter, TraceFilter
from vestibule.authority.principal import ADMINISTRATOR, SSO_ADMIN, USER_MANAGER

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?")


def _day_start(day: dt.date | None) -> dt.datetime | None:
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _day_after(day: dt.date | None) -> dt.datetime | None:
    start = _day_start(day)
    return start + dt.timedelta(days=1) if start else None


class _DateRange(forms.Form):
    since = forms.DateField(label="From (date)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (date, included)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data


class TraceFilterForm(_DateRange):
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[("", "Any"), ("failure", "Failed"), ("success", "Succeeded")],
    )
    reason = forms.CharField(
        label="Reason code",
        required=False,
        max_length=100,
        help_text="For example sso.claim_missing or sso.email_domain_not_owned.",
    )
    connection = forms.ChoiceField(label="Connection", required=False)
    email = forms.CharField(label="Email contains", required=False, max_length=254)

    field_order = ["outcome", "reason", "connection", "email", "since", "until"]

    def __init__(self, *args: Any, connections: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["connection"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Any"), *connections]

    def clean_reason(self) -> str:
        value: str = self.cleaned_data["reason"].strip()
        if value and not re.fullmatch(r"[a-z0-9_.]+", value):
            raise forms.ValidationError("A reason code has lowercase letters, digits, dots and underscores only.")
        return value

    def filters(self) -> TraceFilter:
        data = self.cleaned_data
        return TraceFilter(
            outcome=data.get("outcome") or "",
            reason=data.get("reason") or "",
            connection=uuid.UUID(data["connection"]) if data.get("connection") else None,
            email=(data.get("email") or "").strip(),
            since=_day_start(data.get("since")),
            until=_day_after(data.get("until")),
        )


class AuditFilterForm(_DateRange):
    code = forms.CharField(
        label="Event type",
        required=False,
        max_length=100,
        help_text="An exact code (api_key.created) or a prefix ending in a dot (domain.).",
    )
    actor = forms.CharField(
        label="Actor", required=False, max_length=254, help_text="Part of the person's email, or an API key's prefix."
    )
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any"), ("success", "Success"), ("failure", "Failure")]
    )

    field_order = ["code", "actor", "outcome", "since", "until"]

    def clean_code(self) -> str:
        value: str = self.cleaned_data["code"].strip()
        if value and not re.fullmatch(r"[a-z0-9_.\-]+", value):
            raise forms.ValidationError("An event type has lowercase letters, digits, dots, dashes and underscores.")
        return value

    def filters(self) -> EventFilter:
        data = self.cleaned_data
        return EventFilter(
            code=data.get("code") or "",
            outcome=data.get("outcome") or "",
            actor=(data.get("actor") or "").strip(),
            since=_day_start(data.get("since")),
            until=_day_after(data.get("until")),
        )


KEY_ROLES = [
    (ADMINISTRATOR, "Administrator"),
    (USER_MANAGER, "User manager"),
    (SSO_ADMIN, "SSO admin"),
]


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=200, help_text="What the key is for, e.g. the system that will use it."
    )
    roles = forms.MultipleChoiceField(
        label="Roles",
        choices=KEY_ROLES,
        widget=forms.CheckboxSelectMultiple,
        help_text="The admin roles the key holds in this account; no more than you hold yourself.",
    )


class DomainForm(forms.Form):
    domain = forms.CharField(label="Domain", max_length=253, help_text="For example example.com.")


class ShareForm(forms.Form):
    account = forms.CharField(
        label="Account to share with",
        max_length=50,
        help_text="The other account's slug. It accepts the offer in its own console.",
    )

    def clean_account(self) -> str:
        value: str = self.cleaned_data["account"].strip()
        if not SLUG.fullmatch(value):
            raise forms.ValidationError("An account slug has lowercase letters, digits and inner hyphens only.")
        return value


class ScimTokenForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=200, help_text="What people and the audit log call the directory, e.g. Okta SCIM."
    )
    connection = forms.ChoiceField(
        label="Connection (optional)",
        required=False,
        help_text="Bind the directory to a connection: its externalId is then the person's external user ID there, "
        "so their next SSO login finds the provisioned person.",
    )

    def __init__(self, *args: Any, connections: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["connection"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "None"), *connections]
