"""Generated cases: one valid story or one injected defect each, with its outcome given by construction.

Every function writes its people, applications and agreements through the World and states each
application's expected steps night by night, derived from the defect it injected, never from the verification
code. Night 1 is the start date, night 2 three days later (late agreements, second applications), night 3
thirty-one days later (the thirty-day agreement window has passed for every night-1 application).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from issuance.domain.agreement import CLOCK_TOLERANCE
from issuance.domain.identity import area_codes, check_character
from producers.catalog import WITHDRAWN_FROM_NIGHT
from producers.identifiers import make_id_number
from producers.world import (
    CST,
    FINANCIAL_ACTIVATION,
    NEW_CARD,
    RAW_AGREEMENTS,
    REQUESTED,
    REQUIRED,
    Step,
    SynthPerson,
    World,
)

REJECTED = "REJECTED"
AWAITING = "AWAITING_AGREEMENT"
DEAD_LETTERED = "DEAD_LETTERED"
Case = Callable[[World], int]
_NO_PROVINCE = ("00", "19", "20", "24", "38", "48", "55", "60", "77", "88", "99")
_TOLERANCE_SECONDS = int(CLOCK_TOLERANCE.total_seconds())
# Uyghur given names as written in Chinese characters; a full name joins two with a middle dot.
_MINORITY_NAMES = (
    "买买提",
    "艾力",
    "阿不都",
    "热依拉",
    "古丽",
    "艾山",
    "吐尔逊",
    "努尔",
    "阿依古丽",
    "帕提古丽",
)
# How counters type the dot: bullet, katakana middle dot, its half-width form, hyphenation point, full stop,
# full-width full stop.
_DOT_VARIANTS = ("\u2022", "\u30fb", "\uff65", "\u2027", ".", "\uff0e")
UNKNOWN_BANK = "HXB"  # 华夏银行: a real bank that never cooperates in the generated catalog


def _kind(w: World) -> str:
    return NEW_CARD if w.rng.random() < 0.55 else FINANCIAL_ACTIVATION


def _applicant(w: World, kind: str, minor_share: float = 0.12) -> tuple[SynthPerson, dict[str, str] | None]:
    """A registered-to-be person fit for a valid application of `kind`, and the card it activates."""
    person = w.person(minor=w.rng.random() < minor_share)
    if kind == FINANCIAL_ACTIVATION:
        bank = w.rng.choice(w.catalog.banks).bank_code
        if w.rng.random() < 0.1:
            w.card(person, w.rng.choice(w.catalog.banks).bank_code, status="CANCELLED")
        return person, w.card(person, bank)
    if w.rng.random() < 0.1:  # replacing a lost or cancelled card is a new card
        w.card(person, w.rng.choice(w.catalog.banks).bank_code, status=w.rng.choice(("LOST", "CANCELLED")))
    return person, None


def _valid(w: World, night: int, defect: str) -> int:
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, night, card=card)
    w.emit(app, night, defect, [Step(night, REQUESTED)])
    w.emit_agreement(w.agreement(app), night)
    return 1


def valid(w: World) -> int:
    """A correct application with its agreement the same day."""
    return _valid(w, 1, "NONE")


def valid_night2(w: World) -> int:
    """A correct application submitted for the second night."""
    return _valid(w, 2, "NONE_NIGHT2")


def _rejected(
    w: World,
    defect: str,
    reasons: tuple[str, ...],
    *,
    kind: str | None = None,
    minor: bool = False,
    register: bool = True,
    insured: bool = True,
) -> tuple[SynthPerson, dict[str, object], Callable[[], None]]:
    """A valid application (not yet written) to break; call the returned function after breaking it."""
    kind = kind or _kind(w)
    person, card = _applicant(w, kind, minor_share=1.0 if minor else 0.0)
    person.insured = insured
    app = w.application(person, kind, 1, card=card)
    agreement = w.agreement(app)  # signed with the branch's bank before anything is broken

    def finish() -> None:
        if register:
            w.register(person)
        w.emit(app, 1, defect, [Step(1, REJECTED, reasons)])
        w.emit_agreement(agreement, 1)

    return person, app, finish


def _set_id(app: dict[str, object], id_number: str) -> None:
    applicant = app["applicant"]
    assert isinstance(applicant, dict)
    applicant["id_number"] = id_number


def _id_case(defect: str, detail: str, broken_id: Callable[[World, str, date], str]) -> Case:
    def case(w: World) -> int:
        person, app, finish = _rejected(w, defect, tuple(sorted(("ID_NUMBER_INVALID", detail))))
        _set_id(app, broken_id(w, person.id_number, w.nights[1].business_date))
        finish()
        return 1

    case.__doc__ = f"ID_NUMBER_INVALID ({detail}): {defect}."
    return case


def _wrong_check(w: World, number: str, _day: date) -> str:
    return number[:17] + w.rng.choice([c for c in "0123456789X" if c != number[17]])


def _impossible_birth(w: World, number: str, _day: date) -> str:
    birth = f"{w.rng.randint(1950, 2000)}{w.rng.choice(('0230', '0431', '1301', '0000', '0632'))}"
    return make_id_number(number[:6], birth, w.rng.randrange(1000))


def _future_birth(w: World, number: str, day: date) -> str:
    birth = day + timedelta(days=w.rng.randint(1, 3000))
    return make_id_number(number[:6], f"{birth:%Y%m%d}", w.rng.randrange(1000))


def _birth_before_1900(w: World, number: str, _day: date) -> str:
    birth = date(1899, 1, 1) + timedelta(days=w.rng.randrange(365))
    return make_id_number(number[:6], f"{birth:%Y%m%d}", w.rng.randrange(1000))


def _unknown_area(w: World, number: str, _day: date) -> str:
    known = area_codes()
    while True:
        area = f"{w.rng.choice(_NO_PROVINCE)}{w.rng.randrange(10000):04d}"
        if area not in known:
            return area + number[6:17] + check_character(area + number[6:17])


def person_not_found(w: World) -> int:
    """A valid ID number the registry does not know."""
    _person, _app, finish = _rejected(w, "PERSON_NOT_FOUND", ("PERSON_NOT_FOUND",), register=False)
    finish()
    return 1


def name_mismatch(w: World) -> int:
    """The applicant's name differs from the registry's."""
    person, app, finish = _rejected(w, "NAME_MISMATCH", ("NAME_MISMATCH",))
    applicant = app["applicant"]
    assert isinstance(applicant, dict)
    applicant["name"] = w.other_name(person)
    finish()
    return 1


def not_insured(w: World) -> int:
    """The registry says the person is not insured."""
    _person, _app, finish = _rejected(w, "NOT_INSURED", ("NOT_INSURED",), insured=False)
    finish()
    return 1


def _materials_case(kind: str, minor: bool = False) -> Case:
    defect = f"MATERIALS_MISSING_{kind}" + ("_CHILD" if minor else "")

    def case(w: World) -> int:
        missing = w.rng.choice(REQUIRED[kind, minor])
        reasons = ("MATERIALS_MISSING", f"MISSING_{missing}")
        _person, app, finish = _rejected(w, defect, reasons, kind=kind, minor=minor)
        materials = app["materials"]
        assert isinstance(materials, list)
        app["materials"] = [m for m in materials if m != missing]
        finish()
        return 1

    case.__doc__ = f"MATERIALS_MISSING on a {kind} application of {'a child' if minor else 'an adult'}."
    return case


def _complete_case(defect: str, kind: str, minor: bool) -> Case:
    def case(w: World) -> int:
        person, card = _applicant(w, kind, minor_share=1.0 if minor else 0.0)
        w.register(person)
        app = w.application(person, kind, 1, card=card)
        app["materials"] = list(REQUIRED[kind, minor])
        w.emit(app, 1, defect, [Step(1, REQUESTED)])
        w.emit_agreement(w.agreement(app), 1)
        return 1

    case.__doc__ = (
        f"A {kind} application of {'a child' if minor else 'an adult'} with only the required materials."
    )
    return case


def guardian_missing(w: World) -> int:
    """An applicant under 16 without a guardian."""
    _person, app, finish = _rejected(w, "GUARDIAN_MISSING", ("GUARDIAN_REQUIRED",), kind=NEW_CARD, minor=True)
    app["guardian_id_number"] = None
    finish()
    return 1


def guardian_not_adult(w: World) -> int:
    """An applicant under 16 whose registered guardian is 15 to 17 years old."""
    _person, app, finish = _rejected(
        w, "GUARDIAN_NOT_ADULT", ("GUARDIAN_NOT_ADULT",), kind=NEW_CARD, minor=True
    )
    teen = w.person_from(w.teens)
    w.register(teen)
    app["guardian_id_number"] = teen.id_number
    finish()
    return 1


def guardian_is_applicant(w: World) -> int:
    """An applicant under 16 whose own ID number was entered as the guardian's."""
    person, app, finish = _rejected(
        w, "GUARDIAN_IS_APPLICANT", ("GUARDIAN_IS_APPLICANT",), kind=NEW_CARD, minor=True
    )
    app["guardian_id_number"] = person.id_number
    finish()
    return 1


def guardian_not_found(w: World) -> int:
    """An applicant under 16 whose adult guardian is not in the registry."""
    _person, app, finish = _rejected(
        w, "GUARDIAN_NOT_FOUND", ("GUARDIAN_NOT_FOUND",), kind=NEW_CARD, minor=True
    )
    app["guardian_id_number"] = w.guardian_id(register=False)
    finish()
    return 1


def guardian_invalid(w: World) -> int:
    """An applicant under 16 whose guardian's ID number has a wrong check character."""
    _person, app, finish = _rejected(w, "GUARDIAN_INVALID", ("GUARDIAN_REQUIRED",), kind=NEW_CARD, minor=True)
    guardian = str(app["guardian_id_number"])
    app["guardian_id_number"] = _wrong_check(w, guardian, w.nights[1].business_date)
    finish()
    return 1


def _served(w: World, defect: str, person: SynthPerson, typed: dict[str, str] | None = None) -> int:
    """A valid application of `person` (registered as is), its applicant fields as typed at the counter."""
    kind = _kind(w)
    card = w.card(person, w.rng.choice(w.catalog.banks).bank_code) if kind == FINANCIAL_ACTIVATION else None
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    applicant = app["applicant"]
    assert isinstance(applicant, dict)
    applicant.update(typed or {})
    w.emit(app, 1, defect, [Step(1, REQUESTED)])
    w.emit_agreement(w.agreement(app), 1)
    return 1


def id_lowercase_x(w: World) -> int:
    """An ID number whose check character X was typed as a lowercase x: the same number."""
    person = w.person()
    while not person.id_number.endswith("X"):
        person = w.person()
    return _served(w, "ID_LOWERCASE_X", person, {"id_number": person.id_number.lower()})


def id_residence_permit(w: World) -> int:
    """A Hong Kong, Macau or Taiwan resident's residence-permit number (area 810000, 820000 or 830000)."""
    return _served(w, "ID_RESIDENCE_PERMIT", w.person_from(w.permit_holders))


def name_dot_variant(w: World) -> int:
    """A minority name registered with U+00B7 and typed with another middle dot."""
    person = w.person()
    first, second = w.rng.sample(_MINORITY_NAMES, 2)
    person.name = f"{first}\u00b7{second}"
    return _served(w, "NAME_DOT_VARIANT", person, {"name": f"{first}{w.rng.choice(_DOT_VARIANTS)}{second}"})


def bank_not_branch_bank(w: World) -> int:
    """The application names a cooperating bank other than the branch's."""
    _person, app, finish = _rejected(w, "BANK_NOT_BRANCH_BANK", ("BANK_NOT_COOPERATING",), kind=NEW_CARD)
    app["bank_code"] = w.rng.choice([b.bank_code for b in w.catalog.banks if b.bank_code != app["bank_code"]])
    finish()
    return 1


def bank_unknown(w: World) -> int:
    """The application names a bank that is not in the catalog."""
    _person, app, finish = _rejected(w, "BANK_UNKNOWN", ("BANK_NOT_COOPERATING",), kind=NEW_CARD)
    app["bank_code"] = UNKNOWN_BANK
    finish()
    return 1


def bank_not_in_area(w: World) -> int:
    """A branch in an approved area its bank does not issue in."""
    person, _card = _applicant(w, NEW_CARD, minor_share=0.0)
    w.register(person)
    app = w.application(person, NEW_CARD, 1, branch=w.catalog.uncovered_branch)
    w.emit(app, 1, "BANK_NOT_IN_AREA", [Step(1, REJECTED, ("BANK_NOT_COOPERATING",))])
    w.emit_agreement(w.agreement(app), 1)
    return 1


def area_not_approved(w: World) -> int:
    """A branch in an area the ministry has not approved (its bank issues there)."""
    person, _card = _applicant(w, NEW_CARD, minor_share=0.0)
    w.register(person)
    app = w.application(person, NEW_CARD, 1, branch=w.catalog.unapproved_branch)
    w.emit(app, 1, "AREA_NOT_APPROVED", [Step(1, REJECTED, ("AREA_NOT_APPROVED",))])
    w.emit_agreement(w.agreement(app), 1)
    return 1


def area_withdrawn(w: World) -> int:
    """Waiting for its agreement while its area's approval is withdrawn: the late agreement brings no card."""
    person, _card = _applicant(w, NEW_CARD, minor_share=0.0)
    w.register(person)
    app = w.application(person, NEW_CARD, 1, branch=w.catalog.withdrawn_branch)
    steps = [Step(1, AWAITING), Step(WITHDRAWN_FROM_NIGHT, REJECTED, ("AREA_NOT_APPROVED",))]
    w.emit(app, 1, "AREA_WITHDRAWN_BEFORE_AGREEMENT", steps)
    w.emit_agreement(w.agreement(app, signed_at=_later_day(w, app, 2)), 2)
    return 1


def insurance_lapsed(w: World) -> int:
    """Waiting for its agreement while the applicant stops being insured: the agreement brings no card."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    person.insured_from[2] = False
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    steps = [Step(1, AWAITING), Step(2, REJECTED, ("NOT_INSURED",))]
    w.emit(app, 1, "INSURANCE_LAPSED_BEFORE_AGREEMENT", steps)
    w.emit_agreement(w.agreement(app, signed_at=_later_day(w, app, 2)), 2)
    return 1


def already_has_card(w: World) -> int:
    """A new card asked for by someone holding a valid card."""
    person, _app, finish = _rejected(w, "ALREADY_HAS_CARD", ("ALREADY_HAS_CARD",), kind=NEW_CARD)
    w.card(person, w.rng.choice(w.catalog.banks).bank_code, financial=w.rng.choice(("INACTIVE", "ACTIVE")))
    finish()
    return 1


def card_missing(w: World) -> int:
    """A financial activation without a card number."""
    _person, app, finish = _rejected(w, "CARD_MISSING", ("CARD_NOT_FOUND",), kind=FINANCIAL_ACTIVATION)
    app["card_number"] = None
    finish()
    return 1


def card_unknown(w: World) -> int:
    """A financial activation of a card nobody holds."""
    _person, app, finish = _rejected(w, "CARD_UNKNOWN", ("CARD_NOT_FOUND",), kind=FINANCIAL_ACTIVATION)
    app["card_number"] = w.unknown_cards.take()
    finish()
    return 1


def _card_case(defect: str, status: str, financial: str) -> Case:
    def case(w: World) -> int:
        person, _app, finish = _rejected(w, defect, ("CARD_NOT_ELIGIBLE",), kind=FINANCIAL_ACTIVATION)
        card = person.cards[-1]
        card["status"], card["financial_status"] = status, financial
        finish()
        return 1

    case.__doc__ = f"CARD_NOT_ELIGIBLE: the card is {status}/{financial}."
    return case


def card_other_bank(w: World) -> int:
    """A financial activation at a bank other than the card's."""
    person, app, finish = _rejected(w, "CARD_OTHER_BANK", ("CARD_NOT_ELIGIBLE",), kind=FINANCIAL_ACTIVATION)
    card = person.cards[-1]
    other = w.branch_for(
        w.rng.choice([b.bank_code for b in w.catalog.banks if b.bank_code != card["bank_code"]])
    )
    app["branch_code"], app["bank_code"] = other.branch_code, other.bank_code
    finish()
    return 1


def card_other_person(w: World) -> int:
    """A financial activation of somebody else's card."""
    person, app, finish = _rejected(w, "CARD_OTHER_PERSON", ("CARD_NOT_ELIGIBLE",), kind=NEW_CARD)
    owner = w.person()
    card = w.card(owner, w.rng.choice(w.catalog.banks).bank_code)
    w.register(owner)
    branch = w.branch_for(card["bank_code"])
    app.update(
        application_type=FINANCIAL_ACTIVATION,
        card_number=card["card_number"],
        branch_code=branch.branch_code,
        bank_code=branch.bank_code,
        materials=["RESIDENT_ID_CARD", "SOCIAL_SECURITY_CARD"],
    )
    person.cards.clear()
    finish()
    return 1


def _pair_times(w: World, same_instant: bool) -> tuple[datetime, datetime]:
    first = w.submitted_at(1)
    if same_instant:
        return first, first
    second = w.submitted_at(1)
    while second == first:
        second = w.submitted_at(1)
    return min(first, second), max(first, second)


def _duplicate_case(same_instant: bool) -> Case:
    def case(w: World) -> int:
        kind = _kind(w)
        person, card = _applicant(w, kind)
        w.register(person)
        early, late = _pair_times(w, same_instant)
        first = w.application(person, kind, 1, card=card, at=early)
        second = w.application(person, kind, 1, card=card, at=late)  # larger application id
        outcome = {
            id(first): [Step(1, REQUESTED)],
            id(second): [Step(1, REJECTED, ("DUPLICATE_APPLICATION",))],
        }
        order = [first, second] if w.rng.random() < 0.5 else [second, first]
        for app in order:  # file order does not decide, submitted_at does
            defect = "DUPLICATE_KEPT" if app is first else "DUPLICATE_SAME_NIGHT"
            w.emit(app, 1, defect + ("_SAME_INSTANT" if same_instant else ""), outcome[id(app)])
            w.emit_agreement(w.agreement(app), 1)
        return 2

    case.__doc__ = "Two applications of one person the same night" + (
        " at the same instant." if same_instant else "."
    )
    return case


def duplicate_across_nights(w: World) -> int:
    """A night-2 application while the person's night-1 application still awaits its agreement."""
    person, _card = _applicant(w, NEW_CARD)
    w.register(person)
    first = w.application(person, NEW_CARD, 1)
    w.emit(
        first,
        1,
        "AWAITING_THEN_DUPLICATED",
        [Step(1, AWAITING), Step(2, AWAITING), Step(3, REJECTED, ("AGREEMENT_EXPIRED",))],
    )
    second = w.application(person, NEW_CARD, 2)
    w.emit(second, 2, "DUPLICATE_ACROSS_NIGHTS", [Step(2, REJECTED, ("DUPLICATE_APPLICATION",))])
    w.emit_agreement(w.agreement(second), 2)
    return 2


RESENT = "resent_application"
REUSED = "reused_application_id"


def application_resent(w: World) -> int:
    """A valid night-1 application whose branch sends the very same record again for night 2: the record
    gets the first decision again; the application is not decided twice."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    w.emit(app, 1, "RESENT_ORIGINAL", [Step(1, REQUESTED)])
    w.emit_agreement(w.agreement(app), 1)
    w.emit_repeat(dict(app), 2, RESENT, "RESENT_SAME_CONTENT", Step(2, REQUESTED))
    return 1


def application_id_reused(w: World) -> int:
    """Another person's application for night 2 under the id of a night-1 application: a dead letter."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    w.emit(app, 1, "REUSED_ID_ORIGINAL", [Step(1, REQUESTED)])
    w.emit_agreement(w.agreement(app), 1)
    other, other_card = _applicant(w, kind)
    w.register(other)
    reuse = w.application(other, kind, 2, card=other_card)
    reuse["application_id"] = app["application_id"]
    w.emit_repeat(
        reuse, 2, REUSED, "APPLICATION_ID_REUSED", Step(2, DEAD_LETTERED, ("APPLICATION_ID_REUSED",))
    )
    return 1


def reapply_after_rejection(w: World) -> int:
    """Rejected on night 1 for missing materials, corrected and accepted on night 2."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    first = w.application(person, kind, 1, card=card)
    missing = REQUIRED[kind, person.minor][0]
    first["materials"] = [m for m in first["materials"] if m != missing]
    reasons = ("MATERIALS_MISSING", f"MISSING_{missing}")
    w.emit(first, 1, "MATERIALS_MISSING_BEFORE_REAPPLYING", [Step(1, REJECTED, reasons)])
    w.emit_agreement(w.agreement(first), 1)
    second = w.application(person, kind, 2, card=card)
    w.emit(second, 2, "REAPPLIED", [Step(2, REQUESTED)])
    w.emit_agreement(w.agreement(second), 2)
    return 2


def _with_agreements(
    w: World,
    defect: str,
    steps: list[Step],
    agreements: Callable[[dict[str, object]], list[tuple[int, dict[str, object]]]],
) -> int:
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    w.emit(app, 1, defect, steps)
    for night, agreement in agreements(app):
        w.emit_agreement(agreement, night)
    return 1


def agreement_other_bank(w: World) -> int:
    """The only agreement names another bank (with that bank's own terms)."""
    result: list[Step] = []

    def agreements(app: dict[str, object]) -> list[tuple[int, dict[str, object]]]:
        own = w.catalog.bank(str(app["bank_code"]))
        other = w.rng.choice([b for b in w.catalog.banks if b.bank_code != own.bank_code])
        reasons = ["AGREEMENT_MISMATCH"] + (
            ["AGREEMENT_TERMS_OUTDATED"] if other.terms_version != own.terms_version else []
        )
        result.append(Step(1, REJECTED, tuple(sorted(reasons))))
        return [(1, w.agreement(app, bank_code=other.bank_code))]

    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    signed = agreements(app)
    w.emit(app, 1, "AGREEMENT_OTHER_BANK", result)
    for night, agreement in signed:
        w.emit_agreement(agreement, night)
    return 1


def agreement_signed_before(w: World) -> int:
    """The only agreement was signed before the application was submitted."""
    return _with_agreements(
        w,
        "AGREEMENT_SIGNED_BEFORE",
        [Step(1, REJECTED, ("AGREEMENT_MISMATCH",))],
        lambda app: [
            (
                1,
                w.agreement(
                    app,
                    signed_at=_submitted(app)
                    - timedelta(seconds=w.rng.randint(_TOLERANCE_SECONDS + 1, 86400)),
                ),
            )
        ],
    )


def agreement_terms_outdated(w: World) -> int:
    """The only agreement is on the bank's previous terms."""
    return _with_agreements(
        w,
        "AGREEMENT_TERMS_OUTDATED",
        [Step(1, REJECTED, ("AGREEMENT_TERMS_OUTDATED",))],
        lambda app: [(1, w.agreement(app, terms_version=_outdated(w, app)))],
    )


def agreement_two_invalid(w: World) -> int:
    """Two invalid agreements: the reasons are their union."""
    return _with_agreements(
        w,
        "AGREEMENT_TWO_INVALID",
        [Step(1, REJECTED, ("AGREEMENT_MISMATCH", "AGREEMENT_TERMS_OUTDATED"))],
        lambda app: [
            (1, w.agreement(app, terms_version=_outdated(w, app))),
            (
                1,
                w.agreement(
                    app,
                    signed_at=_submitted(app)
                    - timedelta(seconds=w.rng.randint(_TOLERANCE_SECONDS + 1, 3600)),
                ),
            ),
        ],
    )


def agreement_corrected(w: World) -> int:
    """An outdated agreement, then a valid one: the valid one wins."""
    return _with_agreements(
        w,
        "AGREEMENT_CORRECTED",
        [Step(1, REQUESTED)],
        lambda app: [(1, w.agreement(app, terms_version=_outdated(w, app))), (1, w.agreement(app))],
    )


def agreement_late(w: World) -> int:
    """The agreement is signed a few days later and arrives for night 2."""
    return _with_agreements(
        w,
        "AGREEMENT_LATE",
        [Step(1, AWAITING), Step(2, REQUESTED)],
        lambda app: [(2, w.agreement(app, signed_at=_later_day(w, app, 2)))],
    )


def agreement_never(w: World) -> int:
    """No agreement ever comes: waiting, then expired once thirty days have passed."""
    return _with_agreements(
        w,
        "AGREEMENT_NEVER",
        [Step(1, AWAITING), Step(2, AWAITING), Step(3, REJECTED, ("AGREEMENT_EXPIRED",))],
        lambda app: [],
    )


def agreement_too_late(w: World) -> int:
    """The agreement is signed on the 31st day after submission (Asia/Shanghai)."""
    return _with_agreements(
        w,
        "AGREEMENT_SIGNED_TOO_LATE",
        [Step(1, AWAITING), Step(2, AWAITING), Step(3, REJECTED, ("AGREEMENT_EXPIRED",))],
        lambda app: [(3, w.agreement(app, signed_at=_on_day(w, app, 31, time(0, 0), 16 * 3600)))],
    )


def agreement_end_of_last_day(w: World) -> int:
    """The agreement is signed in the last hour of the 30th day after submission (Asia/Shanghai): valid."""
    return _with_agreements(
        w,
        "AGREEMENT_END_OF_LAST_DAY",
        [Step(1, AWAITING), Step(2, AWAITING), Step(3, REQUESTED)],
        lambda app: [(3, w.agreement(app, signed_at=_on_day(w, app, 30, time(23, 0), 3600)))],
    )


def agreement_clock_skew(w: World) -> int:
    """The agreement is stamped seconds before the submission by the bank's clock: the same visit."""
    return _with_agreements(
        w,
        "AGREEMENT_CLOCK_SKEW",
        [Step(1, REQUESTED)],
        lambda app: [
            (
                1,
                w.agreement(
                    app, signed_at=_submitted(app) - timedelta(seconds=w.rng.randint(1, _TOLERANCE_SECONDS))
                ),
            )
        ],
    )


def agreement_forged(w: World) -> int:
    """The only agreement comes signed by another bank than the one it names: it is no consent (a dead
    letter, SENDER_MISMATCH); the application waits, then expires."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    defect = "AGREEMENT_FORGED_BY_ANOTHER_BANK"
    w.emit(app, 1, defect, [Step(1, AWAITING), Step(2, AWAITING), Step(3, REJECTED, ("AGREEMENT_EXPIRED",))])
    forged = w.agreement(app)
    other = w.rng.choice([b.bank_code for b in w.catalog.banks if b.bank_code != forged["bank_code"]])
    w.emit_raw(RAW_AGREEMENTS, "SENDER_MISMATCH", defect, record=forged, sender=f"bank:{other}")
    return 1


def agreement_forged_invalid(w: World) -> int:
    """An unsigned agreement on outdated terms, forged to close the application, is a dead letter
    (SIGNATURE_MISSING), not a rejection: the application waits for its own agreement and is accepted."""
    kind = _kind(w)
    person, card = _applicant(w, kind)
    w.register(person)
    app = w.application(person, kind, 1, card=card)
    defect = "AGREEMENT_FORGED_INVALID"
    w.emit(app, 1, defect, [Step(1, AWAITING), Step(2, REQUESTED)])
    forged = w.agreement(app, terms_version=_outdated(w, app))
    w.emit_raw(RAW_AGREEMENTS, "SIGNATURE_MISSING", defect, record=forged)
    w.emit_agreement(w.agreement(app, signed_at=_later_day(w, app, 2)), 2)
    return 1


def _on_day(w: World, app: dict[str, object], days: int, start: time, seconds: int) -> datetime:
    """A moment `days` Asia/Shanghai days after the submission day, within `seconds` after `start`."""
    day = _submitted(app).astimezone(CST).date() + timedelta(days=days)
    return datetime.combine(day, start, CST) + timedelta(seconds=w.rng.randrange(seconds))


def agreement_last_moment(w: World) -> int:
    """The agreement is signed exactly thirty days after submission: still valid."""
    return _with_agreements(
        w,
        "AGREEMENT_LAST_MOMENT",
        [Step(1, AWAITING), Step(2, AWAITING), Step(3, REQUESTED)],
        lambda app: [(3, w.agreement(app, signed_at=_submitted(app) + timedelta(days=30)))],
    )


def _submitted(app: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(app["submitted_at"]))


def _outdated(w: World, app: dict[str, object]) -> str:
    return w.catalog.bank(str(app["bank_code"])).outdated_terms_version


def _later_day(w: World, app: dict[str, object], night: int) -> datetime:
    """A business-hours moment after submission, no later than the given night's business day."""
    last = w.nights[night].business_date
    day = last - timedelta(days=w.rng.randint(0, 2))
    moment = datetime.combine(day, time(9, 0), CST) + timedelta(seconds=w.rng.randrange(8 * 3600))
    return max(moment, _submitted(app) + timedelta(minutes=5))


_DUPLICATE = _duplicate_case(False)
_DUPLICATE_SAME_INSTANT = _duplicate_case(True)
VALID_CASES: tuple[tuple[Case, float], ...] = ((valid, 0.95), (valid_night2, 0.05))

# Round-robin order: the first len(DEFECT_CASES) invalid cases cover every reason code.
DEFECT_CASES: tuple[Case, ...] = (
    _id_case("ID_WRONG_CHECK_CHARACTER", "ID_NUMBER_CHECKSUM", _wrong_check),
    person_not_found,
    name_mismatch,
    not_insured,
    _materials_case(NEW_CARD),
    guardian_missing,
    bank_not_branch_bank,
    area_not_approved,
    _DUPLICATE,
    already_has_card,
    card_unknown,
    _card_case("CARD_LOST", "LOST", "INACTIVE"),
    agreement_signed_before,
    agreement_terms_outdated,
    agreement_never,
    agreement_late,
    area_withdrawn,
    insurance_lapsed,
    _id_case("ID_IMPOSSIBLE_BIRTH_DATE", "ID_NUMBER_BIRTH_DATE", _impossible_birth),
    _id_case("ID_FUTURE_BIRTH_DATE", "ID_NUMBER_BIRTH_DATE", _future_birth),
    _id_case("ID_BIRTH_BEFORE_1900", "ID_NUMBER_BIRTH_DATE", _birth_before_1900),
    _id_case("ID_UNKNOWN_AREA", "ID_NUMBER_AREA_CODE", _unknown_area),
    _materials_case(FINANCIAL_ACTIVATION),
    guardian_invalid,
    guardian_not_adult,
    guardian_is_applicant,
    guardian_not_found,
    _materials_case(NEW_CARD, minor=True),
    _materials_case(FINANCIAL_ACTIVATION, minor=True),
    _complete_case("ADULT_ID_CARD_ONLY", NEW_CARD, minor=False),
    _complete_case("CHILD_HOUSEHOLD_REGISTER_ONLY", NEW_CARD, minor=True),
    id_lowercase_x,
    id_residence_permit,
    name_dot_variant,
    bank_unknown,
    bank_not_in_area,
    card_missing,
    card_other_bank,
    _card_case("CARD_CANCELLED", "CANCELLED", "INACTIVE"),
    _card_case("CARD_ALREADY_ACTIVE", "VALID", "ACTIVE"),
    card_other_person,
    _DUPLICATE_SAME_INSTANT,
    duplicate_across_nights,
    reapply_after_rejection,
    agreement_other_bank,
    agreement_two_invalid,
    agreement_corrected,
    agreement_too_late,
    agreement_last_moment,
    agreement_end_of_last_day,
    agreement_clock_skew,
    application_resent,
    application_id_reused,
    agreement_forged,
    agreement_forged_invalid,
)
# Cases that write two applications; the rest write one.
PAIR_CASES: frozenset[Case] = frozenset(
    {_DUPLICATE, _DUPLICATE_SAME_INSTANT, duplicate_across_nights, reapply_after_rejection}
)
