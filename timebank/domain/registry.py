"""The registry of banks in a store: one small stream listing bank ids."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from timebank.domain import errors
from timebank.domain.recording import RecordedAggregate

__all__ = ["REGISTRY_ID", "Registry"]

REGISTRY_ID: UUID = uuid5(NAMESPACE_URL, "https://timebank.invalid/registry")


class Registry(RecordedAggregate):
    """Lists the banks of a store, in the order they were opened."""

    @staticmethod
    def create_id() -> UUID:
        return REGISTRY_ID

    @event("Created")
    def __init__(self) -> None:
        self.banks: list[str] = []
        self.erasures = 0

    def register(self, bank_id: str) -> None:
        if bank_id in self.banks:
            raise errors.BankAlreadyExists(f"bank {bank_id!r} already exists", bank=bank_id)
        self._bank_registered(bank_id)

    @event("BankRegistered")
    def _bank_registered(self, bank_id: str) -> None:
        self.banks.append(bank_id)

    def member_erased(self, member_id: str, actor: str) -> None:
        """Record that a member's personal data was erased (ids only)."""
        self._member_erased(member_id, actor)

    @event("MemberErased")
    def _member_erased(self, member_id: str, actor: str) -> None:  # noqa: ARG002 - audit trail
        self.erasures += 1
