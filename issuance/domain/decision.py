"""The order every decision carries its reason codes in, and the rules behind the codes. What each code means
to the clerk at the counter, in Chinese and in English, is the reason catalogue (`issuance.reason_text`).

The rules behind the codes, in the order verification checks them:

- the ID number (GB 11643-1999) is 17 digits and a check character (a lowercase `x` counts as `X`), the
  ISO 7064 MOD 11-2 check character matches, the birth date is a real day from 1900 to the submission day,
  and the area code is a GB/T 2260 code or a residence-permit code of Hong Kong, Macau or Taiwan residents
  (810000, 820000, 830000): else ID_NUMBER_INVALID with one ID_NUMBER_<problem> detail;
- the registry knows the person (PERSON_NOT_FOUND), under the same name once both are written canonically
  (NFKC, every middle-dot variant as U+00B7: NAME_MISMATCH), who is insured (NOT_INSURED);
- a new card only for someone without a valid card (ALREADY_HAS_CARD); an activation only of the applicant's
  own valid card of that bank whose savings function is not active yet (CARD_NOT_FOUND, CARD_NOT_ELIGIBLE);
- the materials of the application type and the applicant's age (`issuance.domain.verification`): else
  MATERIALS_MISSING with a MISSING_<material> per missing one;
- under 16: a guardian with a valid ID number (GUARDIAN_REQUIRED), not the applicant (GUARDIAN_IS_APPLICANT),
  18 or older (GUARDIAN_NOT_ADULT), in the registry (GUARDIAN_NOT_FOUND);
- a known branch (BRANCH_UNKNOWN) whose bank is the application's and issues in its area
  (BANK_NOT_COOPERATING), in an approved issuing area (AREA_NOT_APPROVED);
- one open application per person, the earliest submitted goes on (DUPLICATE_APPLICATION);
- a valid agreement (`issuance.domain.agreement`): the application's bank (AGREEMENT_MISMATCH), its current
  terms (AGREEMENT_TERMS_OUTDATED), signed no earlier than the submission less a clock tolerance
  (AGREEMENT_MISMATCH), by the end of the thirtieth day after submission in Asia/Shanghai (AGREEMENT_EXPIRED).
"""

from __future__ import annotations

from collections.abc import Iterable

from issuance.domain.model import Reason


def normalize_reasons(reasons: Iterable[Reason]) -> list[Reason]:
    """Unique reasons sorted by code, the order every decision carries them in."""
    return sorted(set(reasons))
