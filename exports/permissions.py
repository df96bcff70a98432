"""Who may export what, and what an export may show them: the API's role and identifier rules.

An export needs the ``view_`` permissions of every model it reads, exactly as the API's
``RolePermissions`` asks for a read. What it shows follows the API's pseudonymisation rule
(``cohorts.api``): whoever may not change participants, and every sponsor, never gets a direct
identifier (date of birth, initials, screening number). No export ever carries a staff username.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from core.free_text import free_text_released
from core.roles import ROLES, SPONSOR
from trial.access import EVERYTHING, Scope, scope_of

SDTM_DOMAINS = ("DM", "EX", "AE", "DS", "IE")

_SUBJECTS = {"trial.view_trial", "cohorts.view_participant", "cohorts.view_enrollment"}
NEEDS: dict[str, frozenset[str]] = {
    "fhir": frozenset(_SUBJECTS | {"cohorts.view_infusion", "safety.view_adverseevent"}),
    "DM": frozenset(_SUBJECTS | {"cohorts.view_infusion", "safety.view_adverseevent"}),
    "EX": frozenset(_SUBJECTS | {"cohorts.view_infusion"}),
    "AE": frozenset(_SUBJECTS | {"safety.view_adverseevent"}),
    "DS": frozenset(_SUBJECTS | {"safety.view_adverseevent"}),
    "IE": frozenset(_SUBJECTS | {"cohorts.view_screeningrecord", "cohorts.view_criterionassessment"}),
    "define": frozenset({"trial.view_trial"}),
    "dossier": frozenset({"trial.view_trial", "safety.view_safetyreview", "safety.view_signoff"}),
}


@dataclass(frozen=True)
class Audience:
    """What an export may show its reader."""

    identified: bool  # direct identifiers (date of birth): site staff and investigators only
    screening: bool  # screen failures and their unmet criteria (roles that read screening data)
    consent: bool  # informed-consent dates (roles that read consent records)
    label: str  # the reader's role, printed on the export ("prepared for")
    scope: Scope = EVERYTHING  # whose participants it covers: the reader's sites or trials (trial.access)
    sponsor: bool = False  # free text only where a data manager released it (core.free_text), as in the API


# What a sponsor's export shows in place of free text nobody has reviewed and released (issue 12, item 8).
WITHHELD = "[withheld: free text not yet reviewed for sponsors]"


def with_release(audience: Audience, records: Iterable, *, chunk: int = 500) -> Iterator[tuple[object, bool]]:
    """Each record with whether its free text may be shown: always for staff; for a sponsor, only a record
    whose text a data manager released and nobody changed since (one query per ``chunk`` records)."""
    rows = iter(records)
    while batch := list(islice(rows, chunk)):
        released = free_text_released(batch) if audience.sponsor else None
        for row in batch:
            yield row, released is None or (type(row)._meta.concrete_model, row.pk) in released


def role_label(user) -> str:
    """The user's role as a plain label, printed on pages and exports instead of any username."""
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in ROLES if r in names), "")
    return role or ("Administrator" if user.is_superuser else "No role")


def is_sponsor(user) -> bool:
    return user.groups.filter(name=SPONSOR).exists()


def audience_for(user) -> Audience:
    sponsor = is_sponsor(user)
    return Audience(
        identified=user.has_perm("cohorts.change_participant") and not sponsor,
        screening=not sponsor and user.has_perms(["cohorts.view_screeningrecord", "cohorts.view_criterionassessment"]),
        consent=not sponsor and user.has_perm("cohorts.view_consentrecord"),
        label=role_label(user),
        scope=scope_of(user),
        sponsor=sponsor,
    )


def may_export(user, kind: str) -> bool:
    return user.is_active and user.has_perms(NEEDS[kind])


def available_exports(user, trial) -> list[tuple[str, str]]:
    """(label, API path) of each export of ``trial`` the user's role allows, for the dashboard's links."""
    base = f"/api/v1/trials/{trial.registry_id}/export"
    links = []
    if may_export(user, "fhir"):
        links.append(("FHIR R4 Bundle (JSON)", f"{base}/fhir/"))
    links += [(f"SDTM {domain} (CSV)", f"{base}/sdtm/{domain}.csv") for domain in SDTM_DOMAINS
              if may_export(user, domain)]  # fmt: skip
    if may_export(user, "define"):
        links.append(("SDTM define listing (CSV)", f"{base}/define/"))
    return links
