"""An optional keyed seal of the audit log's head, kept in the log file itself.

The state store's anchor (``audit_anchor.py``) catches a cut tail or a forged chain only while the state
store survives; deleting it takes the anchor with it. With a key (``[app] audit_key``, a secret pointer),
every append also writes ``HMAC-SHA256(key, "casebridge-audit-seal:v1:<log id>:<seq>:<hash>")`` of the new
head into the log's own ``meta`` table, in the append's transaction. Without the key nobody can seal
another head: a log whose tail was cut, whose chain was forged afresh, or whose seal was removed no
longer carries a valid seal for its head, whatever happened to the state store. (A log file deleted
together with the state store leaves nothing to compare with: keep the head ``audit verify`` prints
somewhere else too.)
"""

from __future__ import annotations

import hashlib
import hmac

SEAL_ROW = "seal"
SEAL_HINT = (
    "if [app] audit_key was just set (or changed) for an existing log, seal it with "
    "`casebridge audit reset --acknowledge-loss`"
)


def seal_for(key: bytes, log_id: str, seq: int, head: str) -> str:
    message = f"casebridge-audit-seal:v1:{log_id}:{seq}:{head}".encode()
    return f"{seq}:{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def seal_problem(key: bytes, log_id: str, seq: int, head: str, stored: str | None) -> str | None:
    """What is wrong with the log's seal, in one sentence; None when the head carries a valid one."""
    if stored is None:
        if seq == 0:  # an empty log that was never sealed
            return None
        return f"the log's head (seq {seq}) carries no seal although a key is configured ({SEAL_HINT})"
    if hmac.compare_digest(stored, seal_for(key, log_id, seq, head)):
        return None
    sealed_seq = stored.split(":", 1)[0]
    if sealed_seq != str(seq):
        return (
            f"the sealed head is seq {sealed_seq} but the log ends at seq {seq}: its tail was cut or records "
            "were added without the key"
        )
    return f"the seal of the head (seq {seq}) is not valid: the chain was rewritten or forged, or the key changed"
