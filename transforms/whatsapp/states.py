"""Each outbound message's state, folded from its statuses whatever their order.

Keyed by `wamid_token`, never the raw wamid: the states table is not partitioned, so nothing in
it is dropped by retention, and a wamid encodes the recipient's phone number.
"""

from __future__ import annotations

import polars as pl

from transforms.whatsapp.schemas import UTC_US, conform

STATES_SCHEMA: dict[str, pl.DataType] = {
    "wamid_token": pl.String(),
    "state": pl.String(),  # the furthest of sent/delivered/read/played; null if none was seen
    "state_at": UTC_US,  # when that state was first reported
    "failed": pl.Boolean(),
    "failed_at": UTC_US,  # the first failure, which also picks `error_code`
    "error_code": pl.Int64(),
    "deleted": pl.Boolean(),  # the message was deleted (kept apart like a failure)
    "deleted_at": UTC_US,
    "last_status_at": UTC_US,  # the latest status of any kind, unknown ones included
}
# A voice note is `played` after it is read: the furthest state an outbound message can reach.
STATE_RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 4}
APART_STATUSES = ("failed", "deleted")
KNOWN_STATUSES = (*STATE_RANK, *APART_STATUSES)
_STATE_OF_RANK = {rank: state for state, rank in STATE_RANK.items()}


def _partial_from_statuses(statuses: pl.DataFrame) -> pl.DataFrame:
    """Status rows in the fold's partial form: one row per status, contributing its rank (if
    ranked), its failure or deletion (if it is one) and its time."""
    rank = pl.col("status").replace_strict(STATE_RANK, default=None, return_dtype=pl.Int64)
    failed = pl.col("status") == "failed"
    deleted = pl.col("status") == "deleted"
    return statuses.select(
        "wamid_token",
        rank=rank,
        state_at=pl.when(rank.is_not_null()).then(pl.col("status_at")),
        failed=failed,
        failed_at=pl.when(failed).then(pl.col("status_at")),
        error_code=pl.when(failed).then(pl.col("error_code")),
        deleted=deleted,
        deleted_at=pl.when(deleted).then(pl.col("status_at")),
        last_status_at=pl.col("status_at"),
    )


def _partial_from_states(states: pl.DataFrame) -> pl.DataFrame:
    """A states table in the fold's partial form: already one row per message."""
    rank = pl.col("state").replace_strict(STATE_RANK, default=None, return_dtype=pl.Int64)
    rest = ("state_at", "failed", "failed_at", "error_code", "deleted", "deleted_at")
    return states.select(
        pl.col("wamid_token"),
        rank.alias("rank"),
        pl.col(*rest),
        pl.col("last_status_at"),
    )


def _fold(partial: pl.DataFrame) -> pl.DataFrame:
    """One row per message. Each column is a commutative, associative choice (max rank and the
    earliest time at it; any failure and the earliest one with the smallest code; the latest
    time), so folding partial results gives the same answer as folding all statuses at once."""
    top = pl.col("rank") == pl.col("rank").max()
    first_failure = pl.col("failed_at") == pl.col("failed_at").min()
    states = partial.group_by("wamid_token").agg(
        rank=pl.col("rank").max(),
        state_at=pl.col("state_at").filter(top).min(),
        failed=pl.col("failed").fill_null(False).any(),
        failed_at=pl.col("failed_at").min(),
        error_code=pl.col("error_code").filter(first_failure).min(),
        deleted=pl.col("deleted").fill_null(False).any(),
        deleted_at=pl.col("deleted_at").min(),
        last_status_at=pl.col("last_status_at").max(),
    )
    state = pl.col("rank").replace_strict(_STATE_OF_RANK, default=None, return_dtype=pl.String)
    return conform(states.with_columns(state=state), STATES_SCHEMA).sort("wamid_token")


def message_states(statuses: pl.DataFrame) -> pl.DataFrame:
    """The state of each message (STATES_SCHEMA) from its status rows (at least `wamid_token`,
    `status`, `status_at`, `error_code`), whatever their order and duplicates.

    `state` is the furthest of sent < delivered < read < played ever reported: a late `delivered`
    after a `read` never moves it back. `failed` and `deleted` are kept apart: neither erases a
    state already reached, and a state does not hide them. Unknown statuses only move
    `last_status_at`.
    """
    return _fold(_partial_from_statuses(statuses))


def merge_states(old_states: pl.DataFrame | None, new_statuses: pl.DataFrame) -> pl.DataFrame:
    """Fold a day's statuses into a running states table: equal to `message_states` of all the
    statuses ever seen (`merge_states(message_states(a), b) == message_states(concat(a, b))`)."""
    if old_states is None:
        return message_states(new_statuses)
    return _fold(
        pl.concat([_partial_from_states(old_states), _partial_from_statuses(new_statuses)])
    )
