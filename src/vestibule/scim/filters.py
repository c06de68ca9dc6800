"""SCIM filters (RFC 7644 §3.4.2.2): a bounded tokenizer and recursive-descent parser.

``parse_filter`` turns the text of a ``filter`` query parameter into a small tree
of frozen dataclasses (:class:`Compare`, :class:`Present`, :class:`And`,
:class:`Or`, :class:`Not`); the service translates that tree into a query against
its own allow-list of attributes (:func:`attributes`). Attribute paths come back
in lower case, since SCIM attribute names are case-insensitive, with the core
User/Group schema URN stripped; an extension attribute keeps its URN
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department``) so an
allow-list of core names never mistakes it for one of them.

Value filters (``emails[type eq "work"]``) are parsed. One holding a single
comparison means the same as the dotted path and comes back as one
(``emails[value eq "a@b"]`` is ``emails.value eq "a@b"``); one combining
several (``emails[type eq "work" and primary eq true]``, or Entra's
``emails[type eq "work"].value eq "a@b"``) requires both to hold for the same
element, which a flat tree cannot say, so it is refused with ``invalidFilter``
and a detail that says so. PATCH paths use :func:`parse_path`, which keeps the
value filter (:class:`ValuePath`).

The input is hostile: its length (:data:`MAX_FILTER_LENGTH`) and nesting
(:data:`MAX_DEPTH`) are bounded before they can cost anything, the tokenizer is
one linear pass (no regular expression runs over the whole text), recursion is
bounded by the nesting limit, and every refusal is a :class:`ScimError`.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from vestibule.scim.errors import ScimError

__all__ = [
    "CORE_SCHEMA_URNS",
    "MAX_DEPTH",
    "MAX_COMPARISONS",
    "MAX_FILTER_LENGTH",
    "OPERATORS",
    "And",
    "AttrPath",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "Present",
    "Value",
    "ValuePath",
    "Predicate",
    "attributes",
    "compile_filter",
    "matches",
    "parse_attr_path",
    "parse_filter",
    "parse_path",
    "render_filter",
]

MAX_FILTER_LENGTH: Final = 4096
# Parentheses, "not (…)" and value-filter brackets each count one level.
MAX_DEPTH: Final = 32
# Entra and Okta send one or two comparisons; a few dozen covers any honest query, and bounding
# them bounds the tree every consumer walks (recursively, like a translation into a database query).
MAX_COMPARISONS: Final = 64
# A longer literal is no identifier a directory sends, and int() of thousands of digits is slow.
MAX_NUMBER_LENGTH: Final = 64

OPERATORS: Final = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_ORDERING: Final = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING: Final = frozenset({"co", "sw", "ew"})

# Lower case: URNs are compared case-insensitively (RFC 8141 §3), and the paths returned are lower case.
CORE_SCHEMA_URNS: Final = frozenset(
    {"urn:ietf:params:scim:schemas:core:2.0:user", "urn:ietf:params:scim:schemas:core:2.0:group"}
)

_ALPHA: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGITS: Final = frozenset("0123456789")
_NAME_CHARS: Final = _ALPHA | _DIGITS | frozenset("-_")
# Characters of an attrPath token, URN prefix included ("urn:…:2.0:User:name.givenName").
_WORD_CHARS: Final = _NAME_CHARS | frozenset("$:.")
_SPACE: Final = frozenset(" \t\r\n\f")
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")

Value: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class Compare:
    """``attribute op value``; ``op`` is one of :data:`OPERATORS`, in lower case."""

    attribute: str
    op: str
    value: Value


@dataclass(frozen=True)
class Present:
    """``attribute pr``: the attribute has a non-empty value."""

    attribute: str


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


Filter: TypeAlias = Compare | Present | And | Or | Not


@dataclass(frozen=True)
class AttrPath:
    """An attrPath split into its parts, all in lower case; ``urn`` is None for a core attribute."""

    urn: str | None
    name: str
    sub: str | None = None

    @property
    def dotted(self) -> str:
        """The form filters use: ``name.sub``, prefixed with the URN for an extension attribute."""
        path = self.name if self.sub is None else f"{self.name}.{self.sub}"
        return path if self.urn is None else f"{self.urn}:{path}"


@dataclass(frozen=True)
class ValuePath:
    """A PATCH path (RFC 7644 §3.5.2): ``attr``, ``attr.sub``, ``attr[filter]`` or ``attr[filter].sub``.

    ``filter`` selects elements of a multi-valued attribute; its attributes are
    sub-attribute names of ``attribute`` (``type``, ``value``).
    """

    attribute: AttrPath
    filter: Filter | None = None
    sub: str | None = None


# ---------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "[", "]", ".", "word", "string", "number", "end"
    text: str
    position: int
    value: Value = None


def _refuse(detail: str) -> ScimError:
    return ScimError(detail, status=400, scim_type="invalidFilter")


def _tokens(text: str) -> list[_Token]:
    """Split ``text`` into tokens in one pass; every character is examined a bounded number of times."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch in "()[].":
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif ch == '"':
            value, end = _string(text, i)
            tokens.append(_Token("string", text[i:end], i, value))
            i = end
        elif ch == "-" or ch in _DIGITS:
            number, end = _number(text, i)
            tokens.append(_Token("number", text[i:end], i, number))
            i = end
        elif ch in _WORD_CHARS:
            start = i
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            tokens.append(_Token("word", text[start:i], start))
        else:
            raise _refuse(f"unexpected character {ch!r} at position {i}")
    tokens.append(_Token("end", "", n))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """Decode the JSON string starting at ``text[start] == '"'``; returns (value, index after it)."""
    out: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
                continue
            if esc != "u":
                raise _refuse(f"invalid escape \\{esc} in the string at position {start}")
            code = _hex4(text, i + 2, start)
            i += 6
            if 0xD800 <= code <= 0xDBFF:
                # A UTF-16 pair, as JSON writes a character outside the BMP.
                if text[i : i + 2] != "\\u":
                    raise _refuse(f"unpaired surrogate escape in the string at position {start}")
                low = _hex4(text, i + 2, start)
                if not 0xDC00 <= low <= 0xDFFF:
                    raise _refuse(f"unpaired surrogate escape in the string at position {start}")
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                i += 6
            elif 0xDC00 <= code <= 0xDFFF:
                raise _refuse(f"unpaired surrogate escape in the string at position {start}")
            if code == 0:
                # No database stores NUL in text; refusing it here keeps it out of every query.
                raise _refuse(f"the string at position {start} contains NUL")
            out.append(chr(code))
            continue
        if ord(ch) < 0x20:
            raise _refuse(f"unescaped control character in the string at position {start}")
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise _refuse(f"unpaired surrogate in the string at position {start}")
        out.append(ch)
        i += 1
    raise _refuse(f"the string at position {start} is not closed")


def _hex4(text: str, at: int, start: int) -> int:
    digits = text[at : at + 4]
    if len(digits) != 4 or not all(c in _HEX for c in digits):
        raise _refuse(f"invalid \\u escape in the string at position {start}")
    return int(digits, 16)


def _number(text: str, start: int) -> tuple[int | float, int]:
    """Scan a JSON number (RFC 8259 §6) at ``start``: int without fraction or exponent, else a finite float."""
    i, n = start, len(text)

    def digits(at: int) -> int:
        while at < n and text[at] in _DIGITS:
            at += 1
        return at

    if text[i] == "-":
        i += 1
    if i >= n or text[i] not in _DIGITS:
        raise _refuse(f"invalid number at position {start}")
    i = i + 1 if text[i] == "0" else digits(i)
    is_int = True
    if i < n and text[i] == ".":
        end = digits(i + 1)
        if end == i + 1:
            raise _refuse(f"invalid number at position {start}")
        i, is_int = end, False
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        end = digits(i)
        if end == i:
            raise _refuse(f"invalid number at position {start}")
        i, is_int = end, False
    literal = text[start:i]
    if len(literal) > MAX_NUMBER_LENGTH:
        raise _refuse(f"the number at position {start} is longer than {MAX_NUMBER_LENGTH} characters")
    if is_int:
        return int(literal), i
    value = float(literal)
    if not math.isfinite(value):
        raise _refuse(f"the number at position {start} is out of range")
    return value, i


# ---------------------------------------------------------------------------
# Attribute paths


def parse_attr_path(text: str, *, position: int = 0) -> AttrPath:
    """Split an attrPath (``[URN ":"] attrName ["." subAttr]``) into lower-case parts.

    The core User/Group URN is dropped; any other URN is kept. Raises
    ``ScimError(400, "invalidFilter")``; :func:`parse_path` re-labels it for PATCH.
    """
    urn: str | None = None
    rest = text
    if text[:4].lower() == "urn:":
        head, sep, rest = text.rpartition(":")
        if not sep or head.count(":") < 2 or not all(c in _NAME_CHARS or c in ":." for c in head):
            raise _refuse(f"invalid schema URN in {text!r} at position {position}")
        urn = head.lower()
        if urn in CORE_SCHEMA_URNS:
            urn = None
    name, dot, sub = rest.partition(".")
    if not _is_name(name) or (dot and not _is_name(sub)):
        raise _refuse(f"invalid attribute path {text!r} at position {position}")
    return AttrPath(urn, name.lower(), sub.lower() if dot else None)


def _is_name(name: str) -> bool:
    # ATTRNAME = ALPHA *(nameChar) (RFC 7643 §2.1), and "$ref" of references.
    if name == "$ref":
        return True
    return bool(name) and name[0] in _ALPHA and all(c in _NAME_CHARS for c in name)


# ---------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive descent over the token list, precedence not > and > or (§3.4.2.2, Table 4)."""

    def __init__(self, text: str, *, flatten: bool = False) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.comparisons = 0
        self.flatten = flatten

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def keyword(self, word: str) -> bool:
        token = self.token
        return token.kind == "word" and token.text.lower() == word

    def expect(self, kind: str, what: str) -> _Token:
        token = self.token
        if token.kind != kind:
            raise _refuse(f"expected {what} at position {token.position}, found {_describe(token)}")
        self.at += 1
        return token

    def filter(self, depth: int, inside: str | None) -> Filter:
        if depth > MAX_DEPTH:
            raise _refuse(f"the filter nests deeper than {MAX_DEPTH} levels at position {self.token.position}")
        left = self.conjunction(depth, inside)
        while self.keyword("or"):
            self.at += 1
            left = Or(left, self.conjunction(depth, inside))
        return left

    def conjunction(self, depth: int, inside: str | None) -> Filter:
        left = self.negation(depth, inside)
        while self.keyword("and"):
            self.at += 1
            left = And(left, self.negation(depth, inside))
        return left

    def negation(self, depth: int, inside: str | None) -> Filter:
        if self.keyword("not") and self.tokens[self.at + 1].kind == "(":
            self.at += 1
            return Not(self.group(depth, inside))
        return self.primary(depth, inside)

    def group(self, depth: int, inside: str | None) -> Filter:
        self.expect("(", "'('")
        inner = self.filter(depth + 1, inside)
        self.expect(")", "')'")
        return inner

    def primary(self, depth: int, inside: str | None) -> Filter:
        if self.token.kind == "(":
            return self.group(depth, inside)
        token = self.expect("word", "an attribute or '('")
        path = parse_attr_path(token.text, position=token.position)
        if self.token.kind == "[":
            if inside is not None:
                raise _refuse(f"a value filter cannot nest inside {inside}[…] (position {self.token.position})")
            return self.value_filter(path, token, depth)
        if inside is not None and (path.urn is not None or path.sub is not None):
            raise _refuse(f"inside {inside}[…] name a sub-attribute only, not {token.text!r}")
        return self.comparison(path.dotted, token)

    def comparison(self, attribute: str, after: _Token) -> Filter:
        token = self.token
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise _refuse(f"the filter has more than {MAX_COMPARISONS} comparisons")
        op = token.text.lower() if token.kind == "word" else ""
        if op == "pr":
            self.at += 1
            return Present(attribute)
        if op not in OPERATORS:
            raise _refuse(
                f"expected an operator (eq ne co sw ew gt ge lt le pr) after {after.text!r} "
                f"at position {token.position}, found {_describe(token)}"
            )
        self.at += 1
        value = self.literal()
        if op in _ORDERING and (value is None or isinstance(value, bool)):
            raise _refuse(f"{op} cannot compare with {json.dumps(value)} (position {token.position})")
        if op in _SUBSTRING and not isinstance(value, str):
            raise _refuse(f"{op} needs a string, not {json.dumps(value)} (position {token.position})")
        return Compare(attribute, op, value)

    def literal(self) -> Value:
        token = self.token
        self.at += 1
        if token.kind in {"string", "number"}:
            return token.value
        if token.kind == "word":
            word = token.text.lower()
            if word in {"true", "false", "null"}:
                return {"true": True, "false": False, "null": None}[word]
        raise _refuse(
            f"expected a value (a string, number, true, false or null) at position {token.position}, "
            f"found {_describe(token)}"
        )

    def value_filter(self, path: AttrPath, token: _Token, depth: int) -> Filter:
        if path.sub is not None:
            raise _refuse(f"a value filter applies to an attribute, not the sub-attribute {token.text!r}")
        self.expect("[", "'['")
        inner = self.filter(depth + 1, path.name)
        self.expect("]", "']'")
        if self.token.kind == ".":
            # Entra's emails[type eq "work"].value eq "x": the same element must match both.
            self.at += 1
            sub = self.expect("word", "a sub-attribute after ']'.")
            if not _is_name(sub.text):
                raise _refuse(f"invalid sub-attribute {sub.text!r} at position {sub.position}")
            inner = And(inner, self.comparison(sub.text.lower(), sub))
        if isinstance(inner, Compare | Present) or self.flatten:
            return _prefixed(inner, path)
        raise _refuse(
            f"value filters combining several conditions ({token.text}[…]) are not supported: "
            f"filter on {path.name}.<sub-attribute> instead"
        )


def _prefixed(node: Filter, path: AttrPath) -> Filter:
    """``node`` with its sub-attribute names made paths under ``path`` (its depth is bounded by MAX_DEPTH)."""
    if isinstance(node, And):
        return And(_prefixed(node.left, path), _prefixed(node.right, path))
    if isinstance(node, Or):
        return Or(_prefixed(node.left, path), _prefixed(node.right, path))
    if isinstance(node, Not):
        return Not(_prefixed(node.inner, path))
    attribute = AttrPath(path.urn, path.name, node.attribute).dotted
    return Present(attribute) if isinstance(node, Present) else Compare(attribute, node.op, node.value)


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the filter"
    text = token.text if len(token.text) <= 40 else token.text[:39] + "…"
    return repr(text)


def parse_filter(text: str, *, flatten_value_filters: bool = False) -> Filter:
    """Parse a SCIM filter; ``ScimError(400, "invalidFilter")`` names what is wrong and where.

    With ``flatten_value_filters`` a value filter of several conditions is
    accepted and flattened (``emails[type eq "work"].value eq "x"`` becomes
    ``emails.type eq "work" and emails.value eq "x"``): the same only for a
    store that keeps one value of that attribute per resource.
    """
    if not isinstance(text, str):
        raise _refuse("the filter must be a string")
    if len(text) > MAX_FILTER_LENGTH:
        raise _refuse(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        raise _refuse("the filter is empty")
    parser = _Parser(text, flatten=flatten_value_filters)
    result = parser.filter(0, None)
    if parser.token.kind != "end":
        raise _refuse(
            f"expected 'and', 'or' or the end at position {parser.token.position}, found {_describe(parser.token)}"
        )
    return result


def parse_path(text: str) -> ValuePath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2); ``ScimError(400, "invalidPath")`` when malformed."""
    if not isinstance(text, str):
        raise ScimError("the path must be a string", scim_type="invalidPath")
    if len(text) > MAX_FILTER_LENGTH:
        raise ScimError(f"the path is longer than {MAX_FILTER_LENGTH} characters", scim_type="invalidPath")
    try:
        parser = _Parser(text)
        token = parser.expect("word", "an attribute")
        path = parse_attr_path(token.text, position=token.position)
        selector: Filter | None = None
        sub: str | None = None
        if parser.token.kind == "[":
            if path.sub is not None:
                raise _refuse(f"a value filter applies to an attribute, not the sub-attribute {token.text!r}")
            parser.expect("[", "'['")
            selector = parser.filter(1, path.name)
            parser.expect("]", "']'")
            if parser.token.kind == ".":
                parser.at += 1
                word = parser.expect("word", "a sub-attribute after ']'.")
                if not _is_name(word.text):
                    raise _refuse(f"invalid sub-attribute {word.text!r}")
                sub = word.text.lower()
        if parser.token.kind != "end":
            raise _refuse(f"unexpected {_describe(parser.token)} at position {parser.token.position}")
    except ScimError as error:
        raise ScimError(f"invalid path: {error.detail}", scim_type="invalidPath") from None
    return ValuePath(path, selector, sub)


# ---------------------------------------------------------------------------
# Reading a parsed filter


def _nodes(f: Filter) -> Iterator[Filter]:
    stack: list[Filter] = [f]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, And | Or):
            stack += (node.right, node.left)
        elif isinstance(node, Not):
            stack.append(node.inner)


def attributes(f: Filter) -> set[str]:
    """Every attribute path the filter mentions, as :func:`parse_filter` normalised them."""
    return {node.attribute for node in _nodes(f) if isinstance(node, Compare | Present)}


def render_filter(f: Filter) -> str:
    """The filter as text that :func:`parse_filter` reads back to an equal tree."""
    if isinstance(f, Compare):
        return f"{f.attribute} {f.op} {_render_value(f.value)}"
    if isinstance(f, Present):
        return f"{f.attribute} pr"
    if isinstance(f, Not):
        return f"not ({render_filter(f.inner)})"
    word = "and" if isinstance(f, And) else "or"
    left = render_filter(f.left)
    right = render_filter(f.right)
    # Left-associative chains need no parentheses; a right-nested one, or an or under an and, does.
    if isinstance(f, And) and isinstance(f.left, Or):
        left = f"({left})"
    if isinstance(f.right, And | Or) and (isinstance(f, And) or isinstance(f.right, Or)):
        right = f"({right})"
    return f"{left} {word} {right}"


def _render_value(value: Value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------
# Evaluating a filter against an element (PATCH value selection)


Predicate: TypeAlias = Callable[[Mapping[str, object]], bool]

_STRING_TESTS: Final[dict[str, Callable[[str, str], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "co": lambda a, e: e in a,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_ORDER_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def compile_filter(f: Filter, *, case_exact: frozenset[str] = frozenset()) -> Predicate:
    """A predicate over complex values (elements of a multi-valued attribute) that says whether ``f`` holds.

    Built once and applied to every element, so a PATCH through a value filter
    costs one cheap call per element. Attribute names are looked up
    case-insensitively; strings compare case-insensitively unless their
    attribute is in ``case_exact`` (RFC 7643 §2.2); a boolean never equals a number.
    """
    if isinstance(f, And):
        left, right = compile_filter(f.left, case_exact=case_exact), compile_filter(f.right, case_exact=case_exact)
        return lambda element: left(element) and right(element)
    if isinstance(f, Or):
        left, right = compile_filter(f.left, case_exact=case_exact), compile_filter(f.right, case_exact=case_exact)
        return lambda element: left(element) or right(element)
    if isinstance(f, Not):
        inner = compile_filter(f.inner, case_exact=case_exact)
        return lambda element: not inner(element)
    name = f.attribute
    if isinstance(f, Present):
        return lambda element: _lookup(element, name) not in (None, "", [], {})
    return _comparison(name, f.op, f.value, exact=name in case_exact)


def _comparison(name: str, op: str, expected: Value, *, exact: bool) -> Predicate:
    if isinstance(expected, str):
        test = _STRING_TESTS[op]
        wanted = expected if exact else expected.casefold()

        def string_test(element: Mapping[str, object]) -> bool:
            actual = _lookup(element, name)
            if not isinstance(actual, str):
                return op == "ne"
            return test(actual if exact else actual.casefold(), wanted)

        return string_test
    if op in ("eq", "ne"):
        equal = op == "eq"

        def equality(element: Mapping[str, object]) -> bool:
            actual = _lookup(element, name)
            same = isinstance(actual, bool) == isinstance(expected, bool) and actual == expected
            return same if equal else not same

        return equality
    order = _ORDER_TESTS[op]

    def ordering(element: Mapping[str, object]) -> bool:
        actual = _lookup(element, name)
        numeric = isinstance(actual, int | float) and not isinstance(actual, bool)
        return (
            numeric and isinstance(expected, int | float) and not isinstance(expected, bool) and order(actual, expected)
        )

    return ordering


def matches(f: Filter, element: Mapping[str, object], *, case_exact: frozenset[str] = frozenset()) -> bool:
    """Whether one complex value satisfies ``f`` (see :func:`compile_filter` to test many)."""
    return compile_filter(f, case_exact=case_exact)(element)


def _lookup(element: Mapping[str, object], attribute: str) -> object:
    if attribute in element:  # the common case: "value", "type", "primary" are spelt in lower case
        return element[attribute]
    for key, value in element.items():
        if isinstance(key, str) and key.lower() == attribute:
            return value
    return None
