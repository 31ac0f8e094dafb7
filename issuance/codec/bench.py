"""Codec throughput on one core: `python -m issuance.codec.bench [N]` (best of 3, CPU time)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from issuance.application_wire import open_application, seal_application
from issuance.codec.avro import decode, encode
from issuance.domain.contract import parse_application
from issuance.trust.keys import Directory, PartyKeys
from issuance.trust.parties import BUREAU
from issuance.trust.sealing import Sealer, Unsealer

APPLICATION: dict[str, Any] = {
    "application_id": "APP-000001",
    "application_type": "FINANCIAL_ACTIVATION",
    "branch_code": "BR-110105-001",
    "bank_code": "ICBC",
    "channel": "COUNTER",
    "applicant": {"id_number": "110105198001011238", "name": "张伟", "phone": "13800138000"},
    "card_number": "A1B2C3D4E",
    "guardian_id_number": None,
    "materials": ["RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"],
    "submitted_at": "2026-11-01T10:00:00+08:00",
    "submission_source": "branch-counter/4.2",
}


def rate(operation: Callable[[], object], n: int) -> float:
    """Operations per CPU second, best of three runs."""
    best = 0.0
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            operation()
        best = max(best, n / max(time.process_time() - start, 1e-9))
    return best


def main(argv: list[str] | None = None) -> None:
    n = int((argv or sys.argv[1:] or ["100000"])[0])
    bureau = PartyKeys.generate(BUREAU)
    sealer, unsealer = Sealer.to(Directory([bureau.public()]), BUREAU), Unsealer(bureau)
    wire = seal_application(APPLICATION, sealer)
    current = encode("ApplicationSubmitted", wire)
    old = encode("ApplicationSubmitted", APPLICATION, version=1)
    cases: dict[str, Callable[[], object]] = {
        "seal + encode ApplicationSubmitted": lambda: encode(
            "ApplicationSubmitted", seal_application(APPLICATION, sealer)
        ),
        "decode ApplicationSubmitted (newest writer)": lambda: decode(current, "ApplicationSubmitted"),
        "decode ApplicationSubmitted (v1 writer, resolved)": lambda: decode(old, "ApplicationSubmitted"),
        "parse_application": lambda: parse_application(APPLICATION),
        "decode + open + contract": lambda: parse_application(
            open_application(decode(current, "ApplicationSubmitted").record, unsealer)
        ),
    }
    for label, operation in cases.items():
        print(f"{label:50s} {rate(operation, n):>10,.0f}/s")


if __name__ == "__main__":
    main()
