"""Topic names and the partition plan."""

from __future__ import annotations

from issuance.kafka.topics import Topics, planned_topics
from issuance.settings import Settings


def test_names_follow_the_contract_with_the_prefix() -> None:
    topics = Topics(Settings(topic_prefix="t1."))
    assert topics.applications == "t1.branch.applications"
    assert topics.agreements == "t1.branch.agreements"
    assert topics.decisions == "t1.branch.decisions"
    assert topics.bank_results("ICBC") == "t1.bank.ICBC.results"
    assert topics.dead_letters == "t1.issuance.dead-letters"
    assert topics.bank_requests("ICBC") == "t1.bank.ICBC.requests"


def test_plan_has_one_request_and_one_answer_topic_per_bank_with_configured_partitions() -> None:
    settings = Settings(application_partitions=6, agreement_partitions=3, bank_partitions=1)
    plan = planned_topics(settings, ["B2", "B1", "B2"])
    assert plan == {
        "branch.applications": 6,
        "branch.agreements": 3,
        "branch.decisions": 6,
        "issuance.dead-letters": 6,
        "branch.card-dispatches": 6,
        "branch.card-events": 6,
        "bank.B1.requests": 1,
        "bank.B1.results": 1,
        "bank.B2.requests": 1,
        "bank.B2.results": 1,
    }
