"""Sealing the audit trail: the one writer of `audit_digests`' chain and the one user of the
digest-signing key (`kms:Sign` on AWS). Runs in the cleanup queue's functions only
(`cleanup/audit_digest`); everything else reads digests through `chain` and checks them with
the public key (`signing`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from chalicelib import aws, config, secret, timeutil
from chalicelib.audit import chain, model, signing


def sign(data: bytes) -> str:
    """A base64 DER ECDSA_SHA_256 signature of `data` with the digest-signing key."""
    key_id = signing.kms_key()
    if key_id:
        answer = aws.client("kms").sign(
            KeyId=key_id, Message=data, MessageType="RAW", SigningAlgorithm=signing.ALGORITHM
        )
        return base64.b64encode(answer["Signature"]).decode()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return base64.b64encode(signing.local_private_key().sign(data, ec.ECDSA(hashes.SHA256()))).decode()


class Sealer(chain.Digests):
    def seal(self, now: float, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
        """Seal every period up to now - SEAL_GRACE (at most MAX_SEGMENTS_PER_RUN), while
        `time_left()` (seconds) is positive: `more` says whether periods were left to seal.
        Raises TamperDetected on a forged head."""
        cut = model.minute_start(now - chain.SEAL_GRACE)  # periods end on a minute, as the counts' minutes
        head = self.head()
        if head is not None and not self.head_ok(head):
            raise chain.TamperDetected("the audit chain head's signature is invalid")
        if head is None:
            start, seq, prev = model.hour_start(cut) - chain.GENESIS_HOURS * 3600, 0, ""
            genesis = timeutil.iso_ms(start)
        else:
            start, seq, prev, genesis = timeutil.parse_iso(head["end"]), int(head["seq"]), head["hash"], head["genesis"]
        sealed = events = 0
        todo = chain.segments(start, cut, chain.MAX_SEGMENTS_PER_RUN + 1)
        for a, b in todo[: chain.MAX_SEGMENTS_PER_RUN]:
            if time_left is not None and time_left() <= 0:
                break
            hour = model.hour_of(a)
            items = self._events.hour(hour, (timeutil.iso_ms(a), timeutil.iso_ms(b)))
            lines = [chain.leaf(i) for i in items]
            digest = chain.make_digest(seq + 1, timeutil.iso_ms(a), timeutil.iso_ms(b), prev, lines, sign)
            self._write(hour, digest, seq, genesis, now)
            seq, prev = digest["seq"], digest["hash"]
            sealed, events = sealed + 1, events + len(lines)
        until = timeutil.iso_ms(todo[sealed - 1][1]) if sealed else None
        return {"sealed": sealed, "events": events, "until": until, "seq": seq, "more": sealed < len(todo)}

    def _write(self, hour: str, digest: dict[str, Any], old_seq: int, genesis: str, now: float) -> None:
        ttl = int(now + chain.DIGEST_RETENTION)
        seg = digest["start"]
        parts = digest.pop("parts")
        head_item = {
            "hour": hour,
            "seg": seg,
            **digest,
            "parts": len(parts),
            "sealed_at": timeutil.iso_ms(now),
            "ttl": ttl,
        }
        pointer = {
            **chain.CHAIN,
            "seq": digest["seq"],
            "end": digest["end"],
            "hash": digest["hash"],
            "genesis": genesis,
        }
        pointer["sig"] = sign(signing.message("head", chain.pointer_text(pointer)))
        pointer["alg"] = signing.ALGORITHM
        name = self._table.name
        puts = [
            {
                "Put": {
                    "TableName": name,
                    "Item": {
                        "hour": hour,
                        "seg": f"{seg}#{digest['end']}#p{n:04d}",
                        "leaves": "\n".join(p),
                        "ttl": ttl,
                    },
                }
            }
            for n, p in enumerate(parts)
        ]
        puts.append({"Put": {"TableName": name, "Item": head_item, "ConditionExpression": "attribute_not_exists(seg)"}})
        if old_seq:
            condition = {"ConditionExpression": "seq = :old", "ExpressionAttributeValues": {":old": old_seq}}
        else:
            condition = {"ConditionExpression": "attribute_not_exists(seg)"}
        puts.append({"Put": {"TableName": name, "Item": pointer, **condition}})
        client = self._table.meta.client
        # One transaction (all or nothing, and two concurrent seals cannot both extend the chain)
        # unless the leaves are too many for it: then the parts go first (each keyed by the period
        # and its number, so a seal run again writes the same parts again); the head and the
        # pointer always together.
        if len(puts) > 40:
            for op in puts[:-2]:
                client.put_item(**op["Put"])
            puts = puts[-2:]
        client.transact_write_items(TransactItems=puts)


def sealer() -> Sealer:
    return Sealer(aws.table("audit_events"), aws.table("audit_digests"), secret.get(config.AUDIT_DIGEST_KEY))


def seal(now: float | None = None, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """Seal the audit trail up to `now` (default: the clock). The `cleanup/audit_digest` job."""
    return sealer().seal(timeutil.now() if now is None else now, time_left)
