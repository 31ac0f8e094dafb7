"""One fixed, valid record per schema version: the golden-bytes and compatibility tests encode these."""

from __future__ import annotations

from typing import Any

_APPLICATION_V1: dict[str, Any] = {
    "application_id": "APP-000001",
    "application_type": "NEW_CARD",
    "branch_code": "BR-110105-001",
    "bank_code": "ICBC",
    "channel": "COUNTER",
    "applicant": {"id_number": "110105198001011238", "name": "张伟", "phone": "13800138000"},
    "card_number": None,
    "guardian_id_number": None,
    "materials": ["RESIDENT_ID_CARD", "HOUSEHOLD_REGISTER"],
    "submitted_at": "2026-11-01T10:00:00+08:00",
}

SAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("ApplicationSubmitted", 1): _APPLICATION_V1,
    ("ApplicationSubmitted", 2): {
        **_APPLICATION_V1,
        "application_type": "FINANCIAL_ACTIVATION",
        "card_number": "A1B2C3D4E",
        "guardian_id_number": "440304197505201234",
        "materials": ["RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"],
        "submission_source": "branch-counter/4.2",
    },
    ("AgreementSigned", 1): {
        "agreement_id": "AGR-000001",
        "application_id": "APP-000001",
        "bank_code": "ICBC",
        "terms_version": "2026.1",
        "document_sha256": "0123456789abcdef" * 4,
        "signed_at": "2026-11-01T11:00:00+08:00",
        "channel": "SELF_SERVICE_TERMINAL",
    },
    ("DecisionIssued", 1): {
        "event_id": "2b1c7a4e-0f5d-5c3a-9e8b-1d2c3b4a5f60",
        "application_id": "APP-000001",
        "branch_code": "BR-110105-001",
        "state": "REJECTED",
        "reasons": ["NAME_MISMATCH", "MATERIALS_MISSING"],
        "decided_at": "2026-11-02T01:30:00+00:00",
        "run_id": 42,
    },
    ("ActivationRequested", 1): {
        "event_id": "9d6e1f2a-3b4c-5d6e-8f70-112233445566",
        "application_id": "APP-000001",
        "bank_code": "ICBC",
        "application_type": "NEW_CARD",
        "attempt": 1,
        "card_number": "12345678X",
        "card_identification_code": "110105D1560000050123456789ABCDEF",
        "account_number": "6222020000000000011",
        "holder_id_number": "110105198001011238",
        "holder_name": "张伟",
        "requested_at": "2026-11-02T01:30:00+00:00",
        "run_id": 42,
    },
    ("ActivationCompleted", 1): {
        "event_id": "0a1b2c3d-4e5f-5a6b-8c7d-8e9fa0b1c2d3",
        "request_event_id": "9d6e1f2a-3b4c-5d6e-8f70-112233445566",
        "application_id": "APP-000001",
        "bank_code": "ICBC",
        "account_reference": "622202******0011",
        "completed_at": "2026-11-02T09:00:00+08:00",
    },
    ("ActivationFailed", 1): {
        "event_id": "0a1b2c3d-4e5f-5a6b-8c7d-8e9fa0b1c2d3",
        "request_event_id": "9d6e1f2a-3b4c-5d6e-8f70-112233445566",
        "application_id": "APP-000001",
        "bank_code": "ICBC",
        "failure_reason": "KYC_FAILED",
        "detail": "identity check failed",
        "failed_at": "2026-11-02T09:00:00+08:00",
    },
    ("MessageDeadLettered", 1): {
        "event_id": "5e4d3c2b-1a09-5f8e-9d7c-6b5a49382716",
        "source_topic": "branch.applications",
        "partition": 3,
        "offset": 1234567890123,
        "stage": "decode",
        "reason": "MALFORMED_MESSAGE",
        "detail": "ApplicationSubmitted v2 body is not decodable (EOFError)",
        "payload": b"\xc3\x01\x00\xff garbage",
        "dead_lettered_at": "2026-11-02T01:30:00+00:00",
        "run_id": None,
    },
}
