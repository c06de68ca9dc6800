"""``{{ text|branded }}``: a message written in the pure packages, in the deployment's product name.

The reasons a sign-in is refused (``vestibule.domain.reasons``) are written
once, without Django, and say "Vestibule"; the page that shows them to the
person says what this deployment is called (``VESTIBULE_PRODUCT_NAME``).
"""

from __future__ import annotations

import re

from django import template

from vestibule.login.mail import product_name

register = template.Library()

_WORD = re.compile(r"\bVestibule\b")


@register.filter
def branded(text: object) -> str:
    name = product_name()
    return _WORD.sub(lambda _: name, str(text))
