"""Roles and actions: who may do what in a bank (see docs/workflows.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import attrs

from timebank.domain.errors import InvalidPolicy

__all__ = ["Action", "Permissions", "Role", "at_least"]


class Role(StrEnum):
    """An actor's role in a bank, lowest first."""

    MEMBER = "member"  #: every active member, for themselves
    COORDINATOR = "coordinator"  #: granted by an admin
    ADMIN = "admin"  #: the bank's creator, or granted by an admin


_RANK = {Role.MEMBER: 1, Role.COORDINATOR: 2, Role.ADMIN: 3}


def at_least(role: Role | None, needed: Role) -> bool:
    """Whether ``role`` is ``needed`` or higher (no role is never enough)."""
    return role is not None and _RANK[role] >= _RANK[needed]


def highest(*roles: Role | None) -> Role | None:
    """The highest of some roles (``None`` when there is none)."""
    present = [r for r in roles if r is not None]
    return max(present, key=_RANK.__getitem__) if present else None


class Action(StrEnum):
    """What a policy grants to roles; see :class:`Permissions`."""

    RECORD = "record"
    RECORD_OWN = "record_own"
    APPROVE = "approve"
    REVERSE = "reverse"
    ACT_ON_BEHALF = "act_on_behalf"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_BANK = "manage_bank"


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise InvalidPolicy(f"unknown role: {value!r}", role=value) from None


@attrs.frozen
class Permissions:
    """The lowest role that may take each action in a bank."""

    record: Role = attrs.field(default=Role.COORDINATOR, converter=_role)
    record_own: Role = attrs.field(default=Role.MEMBER, converter=_role)
    approve: Role = attrs.field(default=Role.COORDINATOR, converter=_role)
    reverse: Role = attrs.field(default=Role.COORDINATOR, converter=_role)
    act_on_behalf: Role = attrs.field(default=Role.COORDINATOR, converter=_role)
    manage_members: Role = attrs.field(default=Role.COORDINATOR, converter=_role)
    manage_bank: Role = attrs.field(default=Role.ADMIN, converter=_role)

    def __attrs_post_init__(self) -> None:
        if self.manage_bank is not Role.ADMIN:
            raise InvalidPolicy("manage_bank must stay with admins (a bank needs an owner)")

    def needed(self, action: Action) -> Role:
        """The lowest role that may take ``action`` in the bank."""
        role: Role = getattr(self, action.value)
        return role

    def to_dict(self) -> dict[str, str]:
        return {a.value: str(self.needed(a)) for a in Action}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Permissions:
        unknown = set(data) - {a.value for a in Action}
        if unknown:
            raise InvalidPolicy(f"unknown actions in permissions: {sorted(unknown)}")
        return cls(**data)
