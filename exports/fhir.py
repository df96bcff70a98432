"""A FHIR R4 (4.0.1) Bundle of the trial, written entry by entry.

* ResearchStudy: the trial, its registry identifier, phase, status, sponsor, site, and one arm per
  dose level (``DL1`` …);
* ResearchSubject: one per enrolled participant, identified by study ID only (a logical reference to
  the individual, no Patient resource: nothing that identifies her leaves), with assigned and actual arm;
* MedicationAdministration: each infusion (cells given, intravenous route, start and end);
* AdverseEvent: each event with its CTCAE term (and MedDRA code), seriousness, outcome, the CTCAE grade
  (the R4 backport of HL7's Adverse Event Clinical Research IG, NCI Thesaurus grade codes), the
  investigator's causality assessment against the infusion, and the study.

Entries reference each other by ``urn:uuid:`` full URLs (UUID 5 of the record's key, so one record has
one URL in every export). The bundle is of type ``collection``. The tests validate it with
``fhir.resources`` 6.4.0, the last release whose models are R4.
"""

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC

from django.utils import timezone

from exports import selectors
from exports.permissions import WITHHELD, Audience, with_release
from trial.models import Trial

NAMESPACE = uuid.UUID("2f0f6c2e-63c8-5a8e-9b8e-2d6a0f1c7e41")
REGISTRY = "https://clinicaltrials.gov"
STUDY_ID_SYSTEM = "urn:cohort-manager:study-id"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
AE_GRADE_EXTENSION = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/ae-grade"
CTCAE_GRADES = {1: ("C41338", "Grade 1 Mild Adverse Event"), 2: ("C41339", "Grade 2 Moderate Adverse Event"),
                3: ("C41340", "Grade 3 Severe Adverse Event"),
                4: ("C41337", "Grade 4 Life Threatening or Disabling Adverse Event"),
                5: ("C48275", "Grade 5 Death Related to Adverse Event")}  # fmt: skip
SEVERITY = {1: "mild", 2: "moderate", 3: "severe", 4: "severe", 5: "severe"}
OUTCOME = {"recovered": "resolved", "recovering": "recovering", "not_recovered": "ongoing",
           "sequelae": "resolvedWithSequelae", "fatal": "fatal", "unknown": "unknown"}  # fmt: skip
CAUSALITY = {"definite": "Certain", "probable": "Probably-Likely", "possible": "Possible", "unlikely": "Unlikely"}
STUDY_STATUS = {"not_yet_recruiting": "approved", "recruiting": "active", "stopped": "administratively-completed",
                "completed": "completed"}  # fmt: skip
SUBJECT_STATUS = {"enrolled": "on-study", "infused": "on-study-intervention", "in_follow_up": "on-study-observation",
                  "completed": "off-study", "withdrawn": "withdrawn", "lost_to_follow_up": "off-study"}  # fmt: skip
PHASE = {"PHASE1": "phase-1", "PHASE1_PHASE2": "phase-1-phase-2"}
MEDDRA = "http://terminology.hl7.org/CodeSystem/mdr"


def urn(*key) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, '/'.join(map(str, key)))}"


def instant(moment) -> str | None:
    return None if moment is None else timezone.localtime(moment, UTC).isoformat()


def coding(system: str, code: str, display: str | None = None) -> dict:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def subject_reference(trial: Trial, study_id: str) -> dict:
    """The individual by her study ID only: a logical reference, no Patient resource."""
    return {"type": "Patient", "identifier": {"system": f"{STUDY_ID_SYSTEM}:{trial.registry_id}", "value": study_id},
            "display": study_id}  # fmt: skip


def research_study(trial: Trial) -> dict:
    site = trial.sites.order_by("pk").first()
    return {
        "resourceType": "ResearchStudy",
        "identifier": [{"system": REGISTRY, "value": trial.registry_id}],
        "title": trial.title,
        "status": STUDY_STATUS.get(trial.status, "active"),
        "phase": {"coding": [coding("http://terminology.hl7.org/CodeSystem/research-study-phase",
                                    PHASE.get(trial.phase, "n-a"))]},
        "description": f"{trial.design}. Investigational product: {trial.product}. Protocol version "
                       f"{trial.protocol_version}.",
        "enrollment": [{"display": f"Planned enrollment: {trial.planned_enrollment}"}],
        **({"sponsor": {"display": trial.sponsor}} if trial.sponsor else {}),
        **({"site": [{"display": f"{site.name}, {site.city}, {site.country}"}]} if site else {}),
        "arm": [{"name": f"DL{d.level}", "type": {"text": "Experimental"},
                 "description": f"Dose level {d.level} ({d.label}): {d.cells} cells, one IV infusion"}
                for d in trial.dose_levels.order_by("level")],
    }  # fmt: skip


def research_subject(trial: Trial, participant, study_url: str) -> dict:
    arm = f"DL{participant.dose_level}" if participant.dose_level else None
    return {
        "resourceType": "ResearchSubject",
        "identifier": [{"system": f"{STUDY_ID_SYSTEM}:{trial.registry_id}", "value": participant.study_id}],
        "status": SUBJECT_STATUS.get(participant.status, "on-study"),
        "period": {"start": instant(participant.enrolled_at)},
        "study": {"reference": study_url},
        "individual": subject_reference(trial, participant.study_id),
        **({"assignedArm": arm} if arm else {}),
        **({"actualArm": arm} if arm and participant.first_start else {}),
    }


def medication_administration(trial: Trial, infusion, study_url: str, *, shown: bool = True) -> dict:
    finished = infusion.status in ("completed", "stopped_early")
    cells = infusion.cells_administered if finished else infusion.cells_planned
    status = {"completed": "completed", "stopped_early": "stopped", "in_progress": "in-progress"}.get(
        infusion.status, "not-done"
    )
    period = {
        "start": instant(infusion.started_at),
        **({"end": instant(infusion.ended_at)} if infusion.ended_at else {}),
    }
    return {
        "resourceType": "MedicationAdministration",
        "status": status,
        **({"statusReason": [{"text": infusion.stop_reason if shown else WITHHELD}]}
           if infusion.status == "stopped_early" else {}),
        "medicationCodeableConcept": {"text": trial.product},
        "subject": subject_reference(trial, infusion.participant.study_id),
        "supportingInformation": [{"reference": study_url, "display": trial.registry_id}],
        "effectivePeriod": period,
        "note": [{"text": f"Dose level {infusion.dose_level.level} ({infusion.dose_level.label}); lot "
                          f"{infusion.product_lot}; infusion {infusion.sequence}"}],
        "dosage": {
            "route": {"coding": [coding("http://snomed.info/sct", "47625008", "Intravenous route")]},
            "dose": {"value": cells, "unit": "cells", "system": "http://unitsofmeasure.org", "code": "{cells}"},
        },
    }  # fmt: skip


def adverse_event(trial: Trial, event, study_url: str, infusion_url: str | None, *, shown: bool = True) -> dict:
    term = event.ctcae_term.term if event.ctcae_term else (event.ctcae_term_text if shown else WITHHELD)
    codings = [coding(MEDDRA, event.ctcae_term.meddra_code, term)] if event.ctcae_term and \
        event.ctcae_term.meddra_code else []  # fmt: skip
    grade_code, grade_display = CTCAE_GRADES[event.worst_grade]
    resource = {
        "resourceType": "AdverseEvent",
        "extension": [{"url": AE_GRADE_EXTENSION, "valueCodeableConcept": {
            "coding": [coding(NCIT, grade_code, grade_display)], "text": f"CTCAE grade {event.worst_grade}"}}],
        "identifier": {"system": f"urn:cohort-manager:adverse-event:{trial.registry_id}", "value": str(event.pk)},
        "actuality": "actual",
        "event": {"coding": codings, "text": term} if codings else {"text": term},
        "subject": subject_reference(trial, event.participant.study_id),
        "date": event.onset_date.isoformat(),
        "detected": instant(event.site_aware_at),
        "recordedDate": instant(event.created_at),
        "seriousness": {"coding": [coding("http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                                          "Serious" if event.serious else "Non-serious",
                                          "Serious" if event.serious else "Non-serious")]},
        "severity": {"coding": [coding("http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                                       SEVERITY[event.worst_grade])]},
        "outcome": {"coding": [coding("http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                                      OUTCOME[event.outcome])]},
        "study": [{"reference": study_url}],
    }  # fmt: skip
    if infusion_url:
        assessment = CAUSALITY.get(event.relationship)
        resource["suspectEntity"] = [{"instance": {"reference": infusion_url}, "causality": [{
            "assessment": {"coding": [coding("http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess",
                                             assessment)], "text": event.get_relationship_display()}
            if assessment else {"text": event.get_relationship_display()},
            "method": {"coding": [coding("http://terminology.hl7.org/CodeSystem/adverse-event-causality-method",
                                         "WHO")]},
        }]}]  # fmt: skip
    return resource


def record_count(trial: Trial, audience: Audience) -> int:
    """Resources in the bundle: the study, the subjects, the infusions and the adverse events."""
    enrolled = replace(audience, screening=False)
    return (
        1
        + selectors.subjects(trial, enrolled).count()
        + selectors.infusions(trial, enrolled).count()
        + selectors.adverse_events(trial, enrolled).count()
    )


def bundle_json(trial: Trial, audience: Audience) -> Iterator[str]:
    """The Bundle as JSON text, one entry at a time. Only enrolled participants (known by study ID) are
    in it, for every reader: FHIR has no place here for the screen failures' pseudonyms."""
    enrolled = replace(audience, screening=False)  # no screen failures: nobody is in FHIR by a pseudonym
    study_url = urn(trial.registry_id, "study")
    head = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"lastUpdated": instant(timezone.now())},
            "identifier": {"system": "urn:cohort-manager:export", "value": f"{trial.registry_id}-fhir"},
            "type": "collection", "timestamp": instant(timezone.now())}  # fmt: skip
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "entry": ['

    def entry(url: str, resource: dict) -> str:
        return json.dumps({"fullUrl": url, "resource": resource}, ensure_ascii=False)

    yield entry(study_url, research_study(trial))
    for participant in selectors.subjects(trial, enrolled).iterator(chunk_size=500):
        yield ",\n" + entry(urn(trial.registry_id, "subject", participant.pk),
                            research_subject(trial, participant, study_url))  # fmt: skip
    for infusion, shown in with_release(audience, selectors.infusions(trial, enrolled).iterator(chunk_size=500)):
        yield ",\n" + entry(urn(trial.registry_id, "infusion", infusion.pk),
                            medication_administration(trial, infusion, study_url, shown=shown))  # fmt: skip
    for event, shown in with_release(audience, selectors.adverse_events(trial, enrolled).iterator(chunk_size=500)):
        suspect = urn(trial.registry_id, "infusion", event.first_infusion) if event.first_infusion else None
        yield ",\n" + entry(urn(trial.registry_id, "adverse-event", event.pk),
                            adverse_event(trial, event, study_url, suspect, shown=shown))  # fmt: skip
    yield "]}\n"
