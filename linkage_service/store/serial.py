"""JSON forms of receipts and alert versions, as the store keeps them."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from .model import AlertRecordView, AlertVersion, Receipt

__all__ = ["alert_from_json", "alert_to_json", "receipt_from_json", "receipt_to_json"]


def receipt_to_json(r: Receipt) -> str:
    return json.dumps(
        {
            "batch_id": r.batch_id,
            "agency": r.agency,
            "idempotency_key": r.idempotency_key,
            "accepted": r.accepted,
            "rejected": [list(x) for x in r.rejected],
            "committed_at": r.committed_at.isoformat(),
        },
        sort_keys=True,
    )


def receipt_from_json(text: str, replayed: bool = False) -> Receipt:
    d = json.loads(text)
    return Receipt(
        batch_id=int(d["batch_id"]),
        agency=d["agency"],
        idempotency_key=d["idempotency_key"],
        accepted=int(d["accepted"]),
        rejected=tuple((ref, reason) for ref, reason in d["rejected"]),
        committed_at=datetime.fromisoformat(d["committed_at"]),
        replayed=replayed,
    )


def alert_to_json(v: AlertVersion) -> str:
    d = dataclasses.asdict(v)
    d.pop("cursor")
    d.pop("extra")
    d["opened_at"] = v.opened_at.isoformat()
    d["updated_at"] = v.updated_at.isoformat()
    return json.dumps(d, sort_keys=True)


def alert_from_json(text: str, cursor: int = 0) -> AlertVersion:
    d = json.loads(text)
    return AlertVersion(
        alert_id=d["alert_id"],
        version=int(d["version"]),
        state=d["state"],
        band=d["band"],
        agencies=tuple(d["agencies"]),
        records=tuple(
            AlertRecordView(
                r["agency"],
                r["ref"],
                bool(r["duplicate"]),
                r.get("band", "match"),
                int(r.get("match_group", 0)),
            )
            for r in d["records"]
        ),
        keys=tuple(int(k) for k in d["keys"]),
        opened_at=datetime.fromisoformat(d["opened_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        merged_into=d.get("merged_into", ""),
        cursor=cursor,
    )
