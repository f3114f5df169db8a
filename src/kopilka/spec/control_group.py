"""The control group: which members a programme keeps out of earning, so that the reports can
compare them with the rest (``control_group_share`` of the programme file).

Pure and stable: a member's bucket depends on their id alone, on every database and in
every version, so the same members stay out for as long as the share is unchanged, and
raising the share only adds members to the group.
"""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

BUCKETS = 10_000
_SALT = b"kopilka-control-group:"


def bucket_of(member_id: uuid.UUID) -> int:
    """A member's bucket, 0 … 9 999: the first 8 bytes of SHA-256 of a fixed salt and the
    member's id, modulo 10 000. Stable forever, independent of the database, and uniform."""
    digest = hashlib.sha256(_SALT + member_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def control_cut(share: Decimal) -> int:
    """Buckets below this number form the control group (``share`` has ≤ 4 places)."""
    return int(share * BUCKETS)


def in_control_group(member_id: uuid.UUID, share: Decimal) -> bool:
    """Whether a member belongs to the hold-out group of a programme that keeps ``share``
    of its members out (they earn nothing; reports compare them with the rest)."""
    return share > 0 and bucket_of(member_id) < control_cut(share)
