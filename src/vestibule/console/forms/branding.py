"""Forms of the Branding page: the account's display name and its logo."""

from __future__ import annotations

from typing import Any

from django import forms

from vestibule.conf.images import MAX_LOGO_BYTES, ImageRefused, Logo, read_logo


class DisplayNameForm(forms.Form):
    name = forms.CharField(
        label="Display name",
        max_length=200,
        help_text="Shown to your people on the sign-in pages, in emails and in the console.",
    )

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data["name"]).split())
        if not name or not name.isprintable():
            raise forms.ValidationError("Use printable text, for example your company's name.")
        return name


class LogoForm(forms.Form):
    logo = forms.FileField(
        label="Logo file",
        help_text="PNG, JPEG or WebP, at most 256 KiB and 4096 pixels a side. SVG is not accepted.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )

    def clean_logo(self) -> Logo:
        upload: Any = self.cleaned_data["logo"]
        if upload.size is not None and upload.size > MAX_LOGO_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024} KiB; a logo may be at most {MAX_LOGO_BYTES // 1024} KiB. "
                "Export a smaller image and upload it again."
            )
        data = upload.read(MAX_LOGO_BYTES + 1)
        try:
            return read_logo(data)
        except ImageRefused as exc:
            raise forms.ValidationError(f"This file cannot be the logo: {exc}.") from None
