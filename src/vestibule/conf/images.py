"""Logo images: which raster format a file really is, from its bytes, without an imaging library.

A logo is served from this origin and shown on the sign-in pages, so what is
stored must be what it claims to be. The file name and the uploader's
Content-Type say nothing; only the bytes are checked:

* PNG, JPEG and WebP only. SVG is a document that can carry script, and a
  browser opening the logo URL directly would run it.
* The container must be whole and end where the format says it ends: a PNG
  after its IEND chunk, a JPEG at its EOI marker, a WebP at its RIFF size. A
  polyglot (an image with an HTML page appended, or a page wearing a PNG
  signature) fails there, or at the markup scan that follows.
* Width and height from the header, each 1 to 4096 pixels: a logo, not a
  decompression bomb.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

MAX_LOGO_BYTES = 256 * 1024
MAX_SIDE = 4096

# Markup a browser could be talked into rendering, were the image ever sniffed as HTML or SVG.
_MARKUP = re.compile(rb"<\s*(?:!doctype|html|head|body|script|svg|iframe|object|embed|meta|\?xml)", re.I)


class ImageRefused(ValueError):
    """The bytes are not a logo this deployment serves; the message says why, for a person."""


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _png(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR" or len(data) < 33:
        raise ImageRefused("the PNG has no image header (IHDR) where it must be")
    width, height = struct.unpack(">II", data[16:24])
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            if pos != len(data):
                raise ImageRefused("there is data after the end of the PNG image (a file disguised as an image?)")
            return width, height
    raise ImageRefused("the PNG image is cut short (no IEND chunk)")


def _jpeg(data: bytes) -> tuple[int, int]:
    if not data.endswith(b"\xff\xd9"):
        raise ImageRefused("the JPEG does not end with its end-of-image marker (cut short, or data appended)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageRefused("the JPEG's structure is broken")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # Start-of-frame markers (not DHT C4, JPG C8, DAC CC) carry the dimensions.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise ImageRefused("the JPEG has no frame header with the image's size")


def _webp(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 != len(data):
        raise ImageRefused("the WebP's size field does not match the file (cut short, or data appended)")
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise ImageRefused("the WebP has no image header this server recognizes (VP8, VP8L or VP8X)")


def read_logo(data: bytes) -> Logo:
    """The checked logo, or :class:`ImageRefused` saying what is wrong with ``data``."""
    if not data:
        raise ImageRefused("the file is empty")
    if len(data) > MAX_LOGO_BYTES:
        raise ImageRefused(f"the file is {len(data) // 1024} KiB; a logo may be at most {MAX_LOGO_BYTES // 1024} KiB")
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            content_type, (width, height) = "image/png", _png(data)
        elif data.startswith(b"\xff\xd8\xff"):
            content_type, (width, height) = "image/jpeg", _jpeg(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            content_type, (width, height) = "image/webp", _webp(data)
        else:
            start = data[:256].lstrip().lower()
            if start.startswith((b"<svg", b"<?xml")) or b"<svg" in start:
                raise ImageRefused("SVG logos are not accepted (an SVG can carry script); use PNG, JPEG or WebP")
            raise ImageRefused("the file is not a PNG, JPEG or WebP image (whatever its name says)")
    except struct.error:
        raise ImageRefused("the image is cut short") from None
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ImageRefused(f"the image is {width}×{height} pixels; each side must be 1 to {MAX_SIDE}")
    if _MARKUP.search(data):
        raise ImageRefused("the image carries HTML or SVG markup (a file disguised as an image?)")
    return Logo(data=data, content_type=content_type, width=width, height=height)


# --- Accent colour -----------------------------------------------------------------------------

DARK_TEXT = "#1b1f24"
LIGHT_TEXT = "#ffffff"
MIN_CONTRAST = 4.5


def _luminance(hex_colour: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_on(accent: str) -> str | None:
    """White or near-black, whichever reads best on ``accent``; None when neither reaches 4.5:1."""
    best = max((LIGHT_TEXT, DARK_TEXT), key=lambda text: contrast(accent, text))
    return best if contrast(accent, best) >= MIN_CONTRAST else None


def ink(accent: str) -> str:
    """The colour for links and headings on the white card: the accent if it reads there, else near-black."""
    return accent if contrast(accent, LIGHT_TEXT) >= MIN_CONTRAST else DARK_TEXT
