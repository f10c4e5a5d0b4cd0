"""The scan and confirm passes' statements, now in `db.queries` (grouped by aggregate);
this name stays for existing imports.
"""

from __future__ import annotations

from ctrip_cli.db.queries import (
    add_status_changes,
    add_webhook_events,
    count_watched_token_payments,
    delete_superseded,
    delete_transfers_above,
    delete_transfers_in_blocks,
    forget_blocks_above,
    insert_transfers,
    lock_payments,
    oldest_open_created_at,
    overdue_pending,
    payments_at,
    payments_by_status,
    replace_scanned_blocks,
    scanned_hashes,
    set_amounts_received,
    set_cursor,
    set_late,
    set_statuses,
    transfer_blocks,
    transfers_of,
    watched_addresses,
)
from ctrip_cli.db.queries import cursor_position as get_cursor

__all__ = [
    "add_status_changes",
    "add_webhook_events",
    "count_watched_token_payments",
    "delete_superseded",
    "delete_transfers_above",
    "delete_transfers_in_blocks",
    "forget_blocks_above",
    "get_cursor",
    "insert_transfers",
    "lock_payments",
    "oldest_open_created_at",
    "overdue_pending",
    "payments_at",
    "payments_by_status",
    "replace_scanned_blocks",
    "scanned_hashes",
    "set_amounts_received",
    "set_cursor",
    "set_late",
    "set_statuses",
    "transfer_blocks",
    "transfers_of",
    "watched_addresses",
]
