"""Template helpers of the console: asset URLs and form fields tied to their help and errors."""

from __future__ import annotations

from typing import Any

from django import template
from django.forms import BoundField
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from vestibule.console.assets import asset_url

register = template.Library()


@register.simple_tag
def asset(name: str) -> str:
    return asset_url(name)


@register.simple_tag
def field(bound: BoundField, **attrs: Any) -> SafeString:
    """Label, input, help text and errors; the input's ``aria-describedby`` names the help and the errors.

    Screen readers then read the error with the field it belongs to (WCAG 3.3.1).
    """
    base = bound.auto_id or bound.html_name
    described = []
    if bound.help_text:
        described.append(f"{base}-help")
    if bound.errors:
        described.append(f"{base}-error")
        attrs["aria-invalid"] = "true"
    if described:
        attrs["aria-describedby"] = " ".join(described)
    widget = bound.as_widget(attrs=attrs)
    return render_to_string(
        "vestibule/console/_field.html",
        {"field": bound, "widget": widget, "base": base, "is_checkbox": bound.widget_type == "checkbox"},
    )
