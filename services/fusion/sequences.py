"""The rule that keeps a lane's sequence numbers from being poisoned by one wild value."""

from __future__ import annotations

# A lane agent numbers its events 1, 2, 3, ... from its outbox; gaps come only from
# events its bounded outbox dropped (100,000 by default). A jump of more than 2^32 past
# the last sequence fusion processed cannot be a real gap: applied, it would make every
# later event of the lane look like a duplicate.
MAX_SEQUENCE_JUMP = 1 << 32


def far_jumps(last_sequence: int, sequences: list[int]) -> list[int]:
    """Indexes of the sequences more than MAX_SEQUENCE_JUMP past last_sequence (none while
    the lane has no last sequence yet: its first event sets where it starts)."""
    if not last_sequence:
        return []
    bound = last_sequence + MAX_SEQUENCE_JUMP
    if not sequences or sequences[-1] <= bound:  # batches are in sequence order
        return []
    return [i for i, sequence in enumerate(sequences) if sequence > bound]
