"""The role catalog and its rule engine (DESIGN "Roles", seed 004).

A catalog is deployment-wide. Each role may

* **imply** other roles (``administrator`` implies every other role),
* **require** at least one role of a set (``pii-viewer`` needs ``analyst`` or
  ``customer-support``), checked after implication,

and one role is the **default** given when an identity provider sends none.

Everything here is pure: a :class:`RoleCatalog` is a frozen value and every
function returns new sets. Errors are :class:`RoleRuleError` subclasses that
name the offending role, so the API can answer 422 with the exact problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Role",
    "RoleCatalog",
    "RoleRuleError",
    "UnknownRole",
    "RequirementNotMet",
    "CatalogInvalid",
    "DEFAULT_CATALOG",
]


class RoleRuleError(ValueError):
    """A set of roles breaks a catalog rule."""

    code = "roles.invalid"

    def __init__(self, role: str, message: str) -> None:
        super().__init__(message)
        self.role = role
        self.message = message


class UnknownRole(RoleRuleError):
    code = "roles.unknown"


class RequirementNotMet(RoleRuleError):
    code = "roles.requirement_not_met"

    def __init__(self, role: str, requires_one_of: tuple[str, ...]) -> None:
        super().__init__(
            role,
            f"role '{role}' requires one of: {', '.join(requires_one_of)}",
        )
        self.requires_one_of = requires_one_of


class CatalogInvalid(ValueError):
    """The catalog definition itself is inconsistent."""


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    implies: tuple[str, ...] = ()
    requires_one_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleCatalog:
    roles: Mapping[str, Role]
    default_role: str
    _closures: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.default_role not in self.roles:
            raise CatalogInvalid(f"default role '{self.default_role}' is not in the catalog")
        for role in self.roles.values():
            for other in (*role.implies, *role.requires_one_of):
                if other not in self.roles:
                    raise CatalogInvalid(f"role '{role.name}' refers to unknown role '{other}'")
        closures = {name: self._close(name) for name in self.roles}
        object.__setattr__(self, "_closures", closures)
        # A default that cannot stand alone would make every claim-less login fail.
        self.validate(closures[self.default_role])

    def _close(self, name: str) -> frozenset[str]:
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(self.roles[current].implies)
        return frozenset(seen)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.roles)

    def require_known(self, roles: Iterable[str]) -> frozenset[str]:
        """Return ``roles`` as a set, or raise :class:`UnknownRole` for the first stranger."""
        result = frozenset(roles)
        for name in sorted(result):
            if name not in self.roles:
                raise UnknownRole(name, f"unknown role '{name}'")
        return result

    def effective(self, roles: Iterable[str]) -> frozenset[str]:
        """The implication closure: the roles plus everything they imply."""
        known = self.require_known(roles)
        result: set[str] = set()
        for name in known:
            result |= self._closures[name]
        return frozenset(result)

    def unmet_requirements(self, roles: Iterable[str]) -> list[RequirementNotMet]:
        """Every role of the effective set whose requirement is not met, sorted by name."""
        effective = self.effective(roles)
        problems = []
        for name in sorted(effective):
            needs = self.roles[name].requires_one_of
            if needs and not effective.intersection(needs):
                problems.append(RequirementNotMet(name, needs))
        return problems

    def validate(self, roles: Iterable[str]) -> frozenset[str]:
        """Raise on an unknown role or an unmet requirement; return the granted set."""
        granted = self.require_known(roles)
        problems = self.unmet_requirements(granted)
        if problems:
            raise problems[0]
        return granted

    def drop_unmet(self, roles: Iterable[str]) -> tuple[frozenset[str], list[RequirementNotMet]]:
        """Remove every granted role that brings in an unmet requirement.

        Returns the kept roles and, per dropped granted role, the requirement
        it failed. Iterates to a fixed point because removing a role can only
        shrink the effective set, which may expose another unmet requirement.
        """
        kept = set(self.require_known(roles))
        dropped: list[RequirementNotMet] = []
        while problems := self.unmet_requirements(kept):
            for problem in problems:
                sources = sorted(r for r in kept if problem.role in self._closures[r])
                kept.difference_update(sources)
                dropped.extend(RequirementNotMet(r, problem.requires_one_of) for r in sources)
        return frozenset(kept), dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "default_role": self.default_role,
            "roles": [
                {
                    "name": r.name,
                    "description": r.description,
                    "implies": list(r.implies),
                    "requires_one_of": list(r.requires_one_of),
                }
                for r in self.roles.values()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoleCatalog:
        try:
            roles = {}
            for item in data["roles"]:
                role = Role(
                    name=str(item["name"]),
                    description=str(item.get("description", "")),
                    implies=tuple(item.get("implies", ())),
                    requires_one_of=tuple(item.get("requires_one_of", ())),
                )
                if role.name in roles:
                    raise CatalogInvalid(f"role '{role.name}' is defined twice")
                roles[role.name] = role
            return cls(roles=roles, default_role=str(data["default_role"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CatalogInvalid(f"catalog is missing or mistypes {exc}") from None
        except RoleRuleError as exc:
            raise CatalogInvalid(f"the default role cannot stand alone: {exc.message}") from None

    @classmethod
    def from_json(cls, text: str) -> RoleCatalog:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogInvalid(f"catalog is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CatalogInvalid("catalog must be a JSON object")
        return cls.from_dict(data)


_ANALYST_OR_SUPPORT = ("analyst", "customer-support")
_SEED_ROLES = (
    Role("analyst", "Reads dashboards and transactions."),
    Role("customer-support", "Helps customers with their transactions."),
    Role("system-manager", "Manages system configuration."),
    Role("system-support", "Reads system configuration for support."),
    Role("user-manager", "Invites and manages users."),
    Role("sso-admin", "Manages SSO connections, mapping roles and SSO authorization."),
    Role("pii-viewer", "Sees personal data.", requires_one_of=_ANALYST_OR_SUPPORT),
    Role("report-manager", "Creates and schedules reports.", requires_one_of=_ANALYST_OR_SUPPORT),
    Role("report-viewer", "Reads reports.", requires_one_of=_ANALYST_OR_SUPPORT),
)

DEFAULT_CATALOG = RoleCatalog(
    roles={
        "administrator": Role(
            "administrator",
            "Full access; implies every other role.",
            implies=tuple(r.name for r in _SEED_ROLES),
        ),
        **{r.name: r for r in _SEED_ROLES},
    },
    default_role="analyst",
)
