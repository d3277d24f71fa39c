"""From a claimed ledger row to the transport's :class:`Recipient`: first name and unsubscribe link.

The runner turns each row of a claimed batch into a recipient just before
handing the batch over; what is personal to a subscriber is decided here and
nowhere else in the sending path.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def recipients(self, rows: Sequence[ClaimedRow]) -> list[Recipient]:
        """The transport's view of a claimed batch, in its order.

        One comprehension with its lookups done once: this runs for every
        recipient of every campaign.
        """
        token = self.signer.unsubscribe_token
        base, fallback = self.base_url, self.first_name_fallback
        url = links.unsubscribe_url
        return [
            Recipient(
                row.email,
                (row.first_name or "").strip() or fallback,
                url(base, token(row.subscriber_id, row.email)),
                row.delivery_id,
                row.subscriber_id,
            )
            for row in rows
        ]
