"""The generator's toolbox: people, applications, agreements and expected outcomes, written as they are made.

Cases (producers/cases.py) are built from these pieces; everything random comes from one seeded
random.Random called in a fixed order, so a seed always yields the same bytes. Names and phone numbers are
drawn from Faker's zh_CN data (surnames by frequency, given names matching the sex the ID number encodes,
mobile prefixes) with that same random source: calling Faker per record costs more than all the rest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import IO, Any

from faker.providers.person.zh_CN import Provider as Names
from faker.providers.phone_number.zh_CN import Provider as Phones

from producers.catalog import BranchSpec, Catalog
from producers.identifiers import CardNumberAllocator, IdNumberAllocator, county_codes

CST = timezone(timedelta(hours=8))
OPENING = time(8, 30)
BUSINESS_SECONDS = 9 * 3600
AGREEMENT_WINDOW = timedelta(days=30)
NEW_CARD = "NEW_CARD"
FINANCIAL_ACTIVATION = "FINANCIAL_ACTIVATION"
# (application type, applicant under 16) -> materials: an adult shows the resident ID card, a child (who
# normally has none) the household register; the child's guardian is named by guardian_id_number.
REQUIRED = {
    (NEW_CARD, False): ("RESIDENT_ID_CARD",),
    (NEW_CARD, True): ("HOUSEHOLD_REGISTER",),
    (FINANCIAL_ACTIVATION, False): ("RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"),
    (FINANCIAL_ACTIVATION, True): ("SOCIAL_SECURITY_CARD", "HOUSEHOLD_REGISTER"),
}
OPTIONAL = {
    (NEW_CARD, False): ("SOCIAL_SECURITY_CARD", "BANK_CARD", "HOUSEHOLD_REGISTER"),
    (NEW_CARD, True): ("SOCIAL_SECURITY_CARD", "BANK_CARD"),
    (FINANCIAL_ACTIVATION, False): ("BANK_CARD",),
    (FINANCIAL_ACTIVATION, True): ("BANK_CARD",),
}
PERMIT_AREAS = ("810000", "820000", "830000")  # residence permits of Hong Kong, Macau and Taiwan residents
ADULT_AGE = 18
MATERIAL_ORDER = ("RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD", "BANK_CARD", "HOUSEHOLD_REGISTER")
# The state the night leaves a served application in (sent to the bank), and where the lifecycle takes it.
REQUESTED = "ACCEPTED"
SERVED_FINAL = "COMPLETED"
# A served application's card at the end, as the demo's simulators leave it (every card produced, received,
# collected, and its savings function activated by its holder): see producers/README.md, expected.jsonl.
SERVED_CARD = ("ISSUED", "ACTIVE")
# The topics of raw_messages.jsonl, as `issuance submit raw` names them.
RAW_APPLICATIONS = "applications"
RAW_AGREEMENTS = "agreements"


class NameBook:
    """Chinese names and mobile numbers from Faker's zh_CN data, drawn with the generator's random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._surnames = list(Names.last_names)
        weights = list(Names.last_names.values())
        self._cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
        self._given = {True: list(Names.first_names_male), False: list(Names.first_names_female)}
        self._prefixes = [str(prefix) for prefix in Phones.phonenumber_prefixes]

    def name(self, male: bool) -> str:
        """A surname by frequency and a one- or two-character given name."""
        surname = self._rng.choices(self._surnames, cum_weights=self._cumulative)[0]
        given = self._given[male]
        first = self._rng.choice(given)
        if len(first) == 1 and self._rng.random() < 0.6:
            first += self._rng.choice([g for g in given if len(g) == 1])
        return surname + first

    def phone(self) -> str:
        """An 11-digit mainland mobile number."""
        return f"{self._rng.choice(self._prefixes)}{self._rng.randrange(10**8):08d}"


def json_line(payload: dict[str, Any]) -> str:
    """One JSON line, UTF-8 text kept readable, compact separators."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True, slots=True)
class Night:
    """One nightly run the generated data is meant for."""

    number: int
    business_date: date


@dataclass(slots=True)
class SynthPerson:
    """A generated person; only some of them are written to the registry."""

    id_number: str
    name: str
    birth: date
    minor: bool
    insured: bool = True
    cards: list[dict[str, str]] = field(default_factory=list)
    insured_from: dict[int, bool] = field(default_factory=dict)  # night -> insured from that night on

    def to_json(self, night: int = 1) -> dict[str, Any]:
        """The registry entry of the reference document of that night."""
        insured = self.insured
        for since in sorted(self.insured_from):
            if since <= night:
                insured = self.insured_from[since]
        return {"id_number": self.id_number, "name": self.name, "insured": insured, "cards": self.cards}


@dataclass(frozen=True, slots=True)
class Step:
    """The state an application must be in after one night."""

    night: int
    state: str
    reasons: tuple[str, ...] = ()


class Sinks:
    """The open output files; applications and agreements have one file per night, the reference document
    one per night whose reference data changes (each a whole document as it stands that night)."""

    def __init__(
        self,
        registries: dict[int, IO[str]],
        applications: dict[int, IO[str]],
        agreements: dict[int, IO[str]],
        expected: IO[str],
        raw: IO[str],
    ) -> None:
        self.registries = registries
        self.applications = applications
        self.agreements = agreements
        self.expected = expected
        self.raw = raw
        self.persons_written = 0


class World:
    """Makes and writes the records of one generation run."""

    def __init__(self, rng: random.Random, catalog: Catalog, nights: dict[int, Night], sinks: Sinks) -> None:
        self.rng = rng
        self.names = NameBook(rng)
        self.catalog = catalog
        self.nights = nights
        self.sinks = sinks
        start = nights[1].business_date
        areas = county_codes()
        # Disjoint birth ranges keep minors and adults apart and leave a year's gap around the 16th birthday.
        self.minors = IdNumberAllocator(rng, areas, _years_before(start, 15), start - timedelta(days=60))
        self.adults = IdNumberAllocator(rng, areas, date(1935, 1, 1), _years_before(start, 17))
        # The gap between minors and adults: teenagers of 15 to 17, who may not stand as guardians.
        self.teens = IdNumberAllocator(
            rng,
            areas,
            _years_before(start, 17) + timedelta(days=1),
            _years_before(start, 15) - timedelta(days=1),
        )
        self.permit_holders = IdNumberAllocator(rng, PERMIT_AREAS, date(1950, 1, 1), _years_before(start, 17))
        self._adult_from = _years_before(start, ADULT_AGE)
        self.registry_cards = CardNumberAllocator(rng, "R")
        self.unknown_cards = CardNumberAllocator(rng, "U")
        self._applications = 0
        self._agreements = 0
        self._raw_messages = 0
        self.applications_written = 0
        self.counts: Counter[str] = Counter()

    # People -------------------------------------------------------------------------------------------------

    def person(self, minor: bool = False, insured: bool = True) -> SynthPerson:
        """A fresh person with a unique valid ID number and a name matching its sex."""
        id_number, birth = (self.minors if minor else self.adults).take()
        return SynthPerson(id_number, self.names.name(_male(id_number)), birth, minor, insured)

    def person_from(self, allocator: IdNumberAllocator) -> SynthPerson:
        """A fresh adult-named person from another allocator (teenagers, residence-permit holders)."""
        id_number, birth = allocator.take()
        return SynthPerson(id_number, self.names.name(_male(id_number)), birth, minor=False)

    def card(
        self, person: SynthPerson, bank_code: str, status: str = "VALID", financial: str = "INACTIVE"
    ) -> dict[str, str]:
        """Give the person a registry card and return it."""
        card = {
            "card_number": self.registry_cards.take(),
            "bank_code": bank_code,
            "status": status,
            "financial_status": financial,
        }
        person.cards.append(card)
        return card

    def register(self, person: SynthPerson) -> None:
        """Write the person to the registry of every night's reference document, as it stands that night."""
        separator = ",\n" if self.sinks.persons_written else "\n"
        for night, registry in self.sinks.registries.items():
            registry.write(separator + json.dumps(person.to_json(night), ensure_ascii=False))
        self.sinks.persons_written += 1

    def guardian_id(self, register: bool = True) -> str:
        """The ID number of a fresh person of 18 or older, nobody else's, written to the registry unless not
        `register`."""
        id_number, birth = self.adults.take()
        while birth > self._adult_from:  # 17-year-olds are adults to the allocator, not to guardianship
            id_number, birth = self.adults.take()
        if register:
            self.register(SynthPerson(id_number, self.names.name(_male(id_number)), birth, minor=False))
        return id_number

    def other_name(self, person: SynthPerson) -> str:
        """A name of the same sex different from the person's."""
        while True:
            candidate = self.names.name(_male(person.id_number))
            if candidate != person.name:
                return candidate

    # Applications and agreements --------------------------------------------------------------------------

    def submitted_at(self, night: int) -> datetime:
        """A moment of the business day of that night, +08:00."""
        opening = datetime.combine(self.nights[night].business_date, OPENING, CST)
        return opening + timedelta(seconds=self.rng.randrange(BUSINESS_SECONDS))

    def branch_for(self, bank_code: str | None = None) -> BranchSpec:
        """A good branch, of the given bank if any."""
        pool = self.catalog.branches_of(bank_code) if bank_code else self.catalog.good_branches
        return self.rng.choice(pool)

    def application(
        self,
        person: SynthPerson,
        kind: str,
        night: int,
        *,
        card: dict[str, str] | None = None,
        branch: BranchSpec | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """A valid application of the person (callers inject one defect afterwards)."""
        self._applications += 1
        branch = branch or self.branch_for(card["bank_code"] if card else None)
        materials = set(REQUIRED[kind, person.minor])
        materials.update(m for m in OPTIONAL[kind, person.minor] if self.rng.random() < 0.4)
        return {
            "application_id": f"APP{self.nights[1].business_date:%Y%m%d}{self._applications:08d}",
            "application_type": kind,
            "branch_code": branch.branch_code,
            "bank_code": branch.bank_code,
            "channel": "SELF_SERVICE_TERMINAL" if self.rng.random() < 0.3 else "COUNTER",
            "applicant": {
                "id_number": person.id_number,
                "name": person.name,
                "phone": self.names.phone(),
            },
            "card_number": card["card_number"] if card else None,
            "guardian_id_number": self.guardian_id() if person.minor else None,
            "materials": [m for m in MATERIAL_ORDER if m in materials],
            "submitted_at": (at or self.submitted_at(night)).isoformat(),
        }

    def agreement(
        self,
        application: dict[str, Any],
        *,
        signed_at: datetime | None = None,
        bank_code: str | None = None,
        terms_version: str | None = None,
    ) -> dict[str, Any]:
        """A valid agreement for the application unless a field is overridden."""
        self._agreements += 1
        submitted = datetime.fromisoformat(application["submitted_at"])
        if signed_at is None:
            signed_at = submitted + timedelta(
                seconds=0 if self.rng.random() < 0.02 else self.rng.randint(1, 1800)
            )
        bank = self.catalog.bank(bank_code or application["bank_code"])
        agreement_id = f"AGR{self.nights[1].business_date:%Y%m%d}{self._agreements:08d}"
        offset = UTC if self.rng.random() < 0.15 else CST
        return {
            "agreement_id": agreement_id,
            "application_id": application["application_id"],
            "bank_code": bank.bank_code,
            "terms_version": terms_version or bank.terms_version,
            "document_sha256": hashlib.sha256(f"{agreement_id}/{bank.bank_code}".encode()).hexdigest(),
            "signed_at": signed_at.astimezone(offset).isoformat(),
            "channel": application["channel"],
        }

    def submitted(self, application: dict[str, Any]) -> datetime:
        """The application's submission instant."""
        return datetime.fromisoformat(application["submitted_at"])

    # Output -----------------------------------------------------------------------------------------------

    def emit(self, application: dict[str, Any], night: int, defect: str, steps: list[Step]) -> None:
        """Write an application to its night's file and its expected outcome."""
        self.sinks.applications[night].write(json_line(application))
        self.applications_written += 1
        self.expect(
            "application",
            application["application_id"],
            None,
            night,
            defect,
            steps,
            application_type=application["application_type"],
        )

    def emit_repeat(
        self, application: dict[str, Any], night: int, kind: str, defect: str, step: Step
    ) -> None:
        """Write a record repeating an earlier application's id to a night's file, and what it must come to:
        not an application of its own, so not counted as one."""
        self.sinks.applications[night].write(json_line(application))
        self.expect(kind, application["application_id"], None, night, defect, [step])

    def emit_agreement(self, agreement: dict[str, Any], night: int) -> None:
        """Write an agreement to the file of the night it arrives."""
        self.sinks.agreements[night].write(json_line(agreement))
        self.counts[f"agreements.night{night}"] += 1

    def emit_raw(
        self,
        topic: str,
        reason: str,
        defect: str,
        *,
        value: bytes | None = None,
        record: dict[str, Any] | None = None,
        sender: str | None = None,
        forgery: str | None = None,
    ) -> str:
        """Write a raw message (night 1, `issuance submit raw`) that must become a dead letter with `reason`:
        bytes verbatim (`value`; None with no record: a null record) or a record encoded at submit, signed by
        `sender` ("kind:code"; None: unsigned) and forged as `forgery` says (producers/raw_prepare.py). Its
        message id, which is also its key."""
        self._raw_messages += 1
        message_id = f"MSG{self.nights[1].business_date:%Y%m%d}{self._raw_messages:06d}"
        line: dict[str, Any] = {"message_id": message_id, "topic": topic, "key": message_id}
        if record is not None:
            line["record"] = record
        else:
            line["value_b64"] = None if value is None else base64.b64encode(value).decode("ascii")
        line.update(sender=sender, forgery=forgery, expected_reason=reason, defect=defect)
        self.sinks.raw.write(json_line(line))
        steps = [Step(1, "DEAD_LETTERED", (reason,))]
        self.expect("raw_message", None, message_id, 1, defect, steps, topic=topic)
        return message_id

    def expect(
        self,
        kind: str,
        application_id: str | None,
        message_id: str | None,
        night: int,
        defect: str,
        steps: list[Step],
        topic: str | None = None,
        application_type: str | None = None,
    ) -> None:
        """Write one line of expected.jsonl (format: see producers/README.md)."""
        first, last = steps[0], steps[-1]
        served = last.state == REQUESTED
        final_state = SERVED_FINAL if served else last.state
        line: dict[str, Any] = {"kind": kind, "application_id": application_id}
        if message_id is not None:
            line["message_id"] = message_id
            line["topic"] = topic
        line.update(
            {
                "night": night,
                "business_date": self.nights[first.night].business_date.isoformat(),
                "state_after_batch": first.state,
                "reasons": list(first.reasons),
                "final_state": final_state,
                "final_reasons": list(last.reasons),
                "final_business_date": self.nights[last.night].business_date.isoformat(),
                # An application's card at the end: served, a new card collected and its savings function
                # active, or the registry card activated; none for the others (nothing ordered).
                "final_card_status": SERVED_CARD[0] if served and application_type else None,
                "final_financial_status": SERVED_CARD[1] if served and application_type else None,
                "timeline": [
                    {
                        "business_date": self.nights[s.night].business_date.isoformat(),
                        "state": s.state,
                        "reasons": list(s.reasons),
                    }
                    for s in steps
                ],
                "defect": defect,
            }
        )
        self.sinks.expected.write(json_line(line))
        self.counts[f"{kind}s"] += 1
        self.counts[f"final_state.{final_state}"] += 1
        for reason in {r for s in steps for r in s.reasons}:
            self.counts[f"reason.{reason}"] += 1


def _male(id_number: str) -> bool:
    """The 17th character is odd for men."""
    return int(id_number[16]) % 2 == 1


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (28 February for 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)
