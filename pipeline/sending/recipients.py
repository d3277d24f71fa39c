"""From a claimed ledger row to the transport's :class:`Recipient`: first name and unsubscribe link.

The runner turns each row of a claimed batch into a recipient just before
handing the batch over; what is personal to a subscriber is decided here and
nowhere else in the sending path.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import links
from pipeline.sending.transports import Recipient
from pipeline.store.ledger import ClaimedRow
from pipeline.tokens import TokenSigner


@dataclass(frozen=True)
class RecipientLinks:
    """Builds each recipient's personal values (first name, unsubscribe link)."""

    signer: TokenSigner
    base_url: str
    first_name_fallback: str

    def recipient(self, row: ClaimedRow) -> Recipient:
        """The transport's view of one claimed ledger row."""
        token = self.signer.issue("unsubscribe", row.subscriber_id, row.email)
        return Recipient(
            email=row.email,
            first_name=(row.first_name or "").strip() or self.first_name_fallback,
            unsubscribe_url=links.unsubscribe_url(self.base_url, token),
            delivery_id=row.delivery_id,
            subscriber_id=row.subscriber_id,
        )
