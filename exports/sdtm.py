"""SDTM-shaped CSV domains (DM, EX, AE, DS, IE) and a define-style listing of their variables.

Variable names, labels and controlled terms follow SDTMIG 3.4 and CDISC CT where a codelist applies
(SEX, AGEU, ROUTE, FRM, ACN, OUT, NY, AESEV, DS decodes, IECAT). This is "SDTM-shaped", not a
submission package: no SUPP-- domains, no trial design domains, no Define-XML. Each domain is a
generator over ``.iterator()`` querysets, written row by row: memory does not grow with the trial.

Dates are ISO 8601 in the site's local time (SDTM --DTC); study days count from RFSTDTC (day 1, no
day 0). Which variables a reader gets follows ``exports.permissions.Audience``: BRTHDTC only for
roles that see identifiers, RFICDTC and the consent milestone only for roles that read consent
records, screen failures only for roles that read screening data.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone

from exports import selectors
from exports.permissions import WITHHELD, Audience, with_release
from trial.models import Trial


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str = "Char"  # Char | Num
    origin: str = "CRF"  # CRF (collected) | Derived | Assigned | Protocol
    role: str = "Record Qualifier"
    codelist: str = ""  # the CDISC codelist or the terms used
    shown_to: str = ""  # "" everyone who may export the domain | identified | consent | screening

    def visible(self, audience: Audience) -> bool:
        return not self.shown_to or getattr(audience, self.shown_to)


def _ids(domain: str) -> tuple[Variable, ...]:
    return (
        Variable("STUDYID", "Study Identifier", origin="Assigned", role="Identifier"),
        Variable("DOMAIN", "Domain Abbreviation", origin="Assigned", role="Identifier", codelist=domain),
        Variable(
            "USUBJID", "Unique Subject Identifier", origin="Derived", role="Identifier", codelist="STUDYID-SUBJID"
        ),
    )


NY = "NY (N, Y)"
DOMAINS: dict[str, tuple[Variable, ...]] = {
    "DM": (
        *_ids("DM"),
        Variable(
            "SUBJID",
            "Subject Identifier for the Study",
            role="Topic",
            codelist="study ID; screen failures SF + internal number",
        ),
        Variable(
            "RFSTDTC",
            "Subject Reference Start Date/Time",
            origin="Derived",
            role="Record Qualifier",
            codelist="first infusion start",
        ),
        Variable(
            "RFENDTC",
            "Subject Reference End Date/Time",
            origin="Derived",
            codelist="withdrawal, else last visit done, else last infusion end",
        ),
        Variable("RFXSTDTC", "Date/Time of First Study Treatment", origin="Derived"),
        Variable("RFXENDTC", "Date/Time of Last Study Treatment", origin="Derived"),
        Variable("RFICDTC", "Date/Time of Informed Consent", shown_to="consent"),
        Variable("DTHDTC", "Date/Time of Death", origin="Derived", codelist="onset of a fatal adverse event"),
        Variable("DTHFL", "Subject Death Flag", origin="Derived", codelist="Y or null"),
        Variable("SITEID", "Study Site Identifier", origin="Assigned", role="Synonym Qualifier"),
        Variable("BRTHDTC", "Date/Time of Birth", shown_to="identified"),
        Variable("AGE", "Age", type="Num", origin="Derived", codelist="completed years at RFSTDTC (or screening)"),
        Variable("AGEU", "Age Units", origin="Assigned", codelist="AGEU (YEARS)"),
        Variable("SEX", "Sex", codelist="SEX (F, M, U)"),
        Variable("ARMCD", "Planned Arm Code", origin="Assigned", codelist="DL<dose level>"),
        Variable("ARM", "Description of Planned Arm", origin="Assigned"),
        Variable("ACTARMCD", "Actual Arm Code", origin="Derived"),
        Variable("ACTARM", "Description of Actual Arm", origin="Derived"),
        Variable(
            "ARMNRS",
            "Reason Arm and/or Actual Arm is Null",
            origin="Derived",
            codelist="ARMNULRS (SCREEN FAILURE, ASSIGNED, NOT TREATED)",
        ),
        Variable("COUNTRY", "Country", origin="Assigned", codelist="ISO 3166-1 alpha-3"),
    ),
    "EX": (
        *_ids("EX"),
        Variable("EXSEQ", "Sequence Number", type="Num", origin="Derived", role="Identifier"),
        Variable("EXTRT", "Name of Treatment", origin="Protocol", role="Topic"),
        Variable("EXDOSE", "Dose", type="Num", codelist="cells administered (planned while running)"),
        Variable("EXDOSU", "Dose Units", origin="Assigned", codelist="CELLS (sponsor term; no CDISC UNIT term)"),
        Variable("EXDOSFRM", "Dose Form", origin="Assigned", codelist="FRM (SUSPENSION)"),
        Variable("EXDOSFRQ", "Dosing Frequency per Interval", origin="Protocol", codelist="FREQ (ONCE)"),
        Variable("EXROUTE", "Route of Administration", origin="Protocol", codelist="ROUTE (INTRAVENOUS)"),
        Variable("EXLOT", "Lot Number"),
        Variable("EXADJ", "Reason for Dose Adjustment", codelist="reason the infusion was stopped early"),
        Variable("EPOCH", "Epoch", origin="Assigned", role="Timing", codelist="EPOCH (TREATMENT)"),
        Variable("EXSTDTC", "Start Date/Time of Treatment", role="Timing"),
        Variable("EXENDTC", "End Date/Time of Treatment", role="Timing"),
        Variable("EXSTDY", "Study Day of Start of Treatment", type="Num", origin="Derived", role="Timing"),
        Variable("EXENDY", "Study Day of End of Treatment", type="Num", origin="Derived", role="Timing"),
    ),
    "AE": (
        *_ids("AE"),
        Variable("AESEQ", "Sequence Number", type="Num", origin="Derived", role="Identifier"),
        Variable(
            "AESPID",
            "Sponsor-Defined Identifier",
            origin="Assigned",
            role="Identifier",
            codelist="the event's record number",
        ),
        Variable("AETERM", "Reported Term for the Adverse Event", role="Topic"),
        Variable(
            "AEDECOD",
            "Dictionary-Derived Term",
            origin="Assigned",
            role="Synonym Qualifier",
            codelist="CTCAE v5.0 term (MedDRA)",
        ),
        Variable("AEBODSYS", "Body System or Organ Class", origin="Assigned", codelist="MedDRA SOC (CTCAE v5.0)"),
        Variable("AESEV", "Severity/Intensity", origin="Derived", codelist="AESEV (MILD, MODERATE, SEVERE)"),
        Variable("AETOXGR", "Standard Toxicity Grade", codelist="CTCAE v5.0 grade 1-5 (worst grade)"),
        Variable("AESER", "Serious Event", codelist=NY),
        Variable("AESDTH", "Results in Death", codelist=NY),
        Variable("AESLIFE", "Is Life Threatening", codelist=NY),
        Variable("AESHOSP", "Requires or Prolongs Hospitalization", codelist=NY),
        Variable("AESDISAB", "Persist or Signif Disability/Incapacity", codelist=NY),
        Variable("AESCONG", "Congenital Anomaly or Birth Defect", codelist=NY),
        Variable("AESMIE", "Other Medically Important Serious Event", codelist=NY),
        Variable(
            "AEREL", "Causality", codelist="NOT RELATED, UNLIKELY RELATED, POSSIBLY RELATED, PROBABLY RELATED, RELATED"
        ),
        Variable("AEACN", "Action Taken with Study Treatment", codelist="ACN"),
        Variable("AECONTRT", "Concomitant or Additional Trtmnt Given", codelist=NY),
        Variable("AEOUT", "Outcome of Adverse Event", codelist="OUT"),
        Variable("AESTDTC", "Start Date/Time of Adverse Event", role="Timing"),
        Variable("AEENDTC", "End Date/Time of Adverse Event", role="Timing"),
        Variable("AESTDY", "Study Day of Start of Adverse Event", type="Num", origin="Derived", role="Timing"),
        Variable("AEENDY", "Study Day of End of Adverse Event", type="Num", origin="Derived", role="Timing"),
    ),
    "DS": (
        *_ids("DS"),
        Variable("DSSEQ", "Sequence Number", type="Num", origin="Derived", role="Identifier"),
        Variable("DSTERM", "Reported Term for the Disposition Event", role="Topic"),
        Variable(
            "DSDECOD",
            "Standardized Disposition Term",
            origin="Assigned",
            role="Synonym Qualifier",
            codelist="NCOMPLT / PROTMLST (COMPLETED, WITHDRAWAL BY SUBJECT, LOST TO FOLLOW-UP, DEATH, "
            "SCREEN FAILURE, INFORMED CONSENT OBTAINED)",
        ),
        Variable(
            "DSCAT",
            "Category for Disposition Event",
            origin="Assigned",
            role="Grouping Qualifier",
            codelist="DSCAT (DISPOSITION EVENT, PROTOCOL MILESTONE)",
        ),
        Variable("EPOCH", "Epoch", origin="Assigned", role="Timing", codelist="EPOCH (SCREENING, FOLLOW-UP)"),
        Variable("DSSTDTC", "Start Date/Time of Disposition Event", role="Timing"),
    ),
    "IE": (
        *_ids("IE"),
        Variable("IESEQ", "Sequence Number", type="Num", origin="Derived", role="Identifier"),
        Variable("IETESTCD", "Inclusion/Exclusion Criterion Short Name", origin="Protocol", role="Topic"),
        Variable("IETEST", "Inclusion/Exclusion Criterion", origin="Protocol", role="Synonym Qualifier"),
        Variable(
            "IECAT",
            "Inclusion/Exclusion Category",
            origin="Protocol",
            role="Grouping Qualifier",
            codelist="IECAT (INCLUSION, EXCLUSION)",
        ),
        Variable("IEORRES", "I/E Criterion Original Result", origin="Derived", role="Result Qualifier", codelist=NY),
        Variable(
            "IESTRESC", "I/E Criterion Result in Std Format", origin="Derived", role="Result Qualifier", codelist=NY
        ),
        Variable("EPOCH", "Epoch", origin="Assigned", role="Timing", codelist="EPOCH (SCREENING)"),
        Variable("IEDTC", "Date/Time of Collection", role="Timing", codelist="screening date"),
    ),
}

SEVERITY = {1: "MILD", 2: "MODERATE", 3: "SEVERE", 4: "SEVERE", 5: "SEVERE"}
RELATIONSHIP = {"not_related": "NOT RELATED", "unlikely": "UNLIKELY RELATED", "possible": "POSSIBLY RELATED",
                "probable": "PROBABLY RELATED", "definite": "RELATED"}  # fmt: skip
ACTION = {"none": "DOSE NOT CHANGED", "infusion_interrupted": "DRUG INTERRUPTED", "infusion_stopped": "DRUG WITHDRAWN",
          "treatment_given": "DOSE NOT CHANGED", "not_applicable": "NOT APPLICABLE"}  # fmt: skip
OUTCOME = {"recovered": "RECOVERED/RESOLVED", "recovering": "RECOVERING/RESOLVING",
           "not_recovered": "NOT RECOVERED/NOT RESOLVED", "sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
           "fatal": "FATAL", "unknown": "UNKNOWN"}  # fmt: skip
DISPOSITION = {"withdrawn": "WITHDRAWAL BY SUBJECT", "lost_to_follow_up": "LOST TO FOLLOW-UP",
               "completed": "COMPLETED"}  # fmt: skip
COUNTRIES = {"china": "CHN", "united states": "USA", "united kingdom": "GBR", "germany": "DEU", "france": "FRA",
             "japan": "JPN", "korea, republic of": "KOR", "south korea": "KOR", "canada": "CAN", "spain": "ESP",
             "australia": "AUS", "italy": "ITA", "netherlands": "NLD", "switzerland": "CHE"}  # fmt: skip


def columns(domain: str, audience: Audience) -> list[Variable]:
    return [v for v in DOMAINS[domain] if v.visible(audience)]


# --- value helpers ----------------------------------------------------------------------------------


def yn(value: bool) -> str:
    return "Y" if value else "N"


def dtc(value: datetime | date | None, zone_name: str = "UTC") -> str:
    """ISO 8601 as SDTM writes it: a date, or a local date and time to the minute."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value, selectors.zone(zone_name)).strftime("%Y-%m-%dT%H:%M")
    return value.isoformat()


def local_date(value: datetime | None, zone_name: str) -> date | None:
    return None if value is None else timezone.localtime(value, selectors.zone(zone_name)).date()


def study_day(day: date | None, reference: date | None) -> int | str:
    """SDTM study day: day 1 is the reference start date; the day before it is -1 (there is no day 0)."""
    if day is None or reference is None:
        return ""
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def age_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def subjid(participant) -> str:
    """The study ID; a screen failure (no study ID) gets ``SF`` and the internal record number, which the
    API shows every reader: never the screening number, an identifier."""
    return participant.study_id or f"SF{participant.pk:05d}"


def usubjid(trial: Trial, participant) -> str:
    return f"{trial.registry_id}-{subjid(participant)}"


def arm(level: int | None, label: str | None, cells: int | None) -> tuple[str, str]:
    if level is None:
        return "", ""
    return f"DL{level}", f"Dose level {level}: {label} ({cells:.1E} cells)".replace("E+0", "E").replace("E+", "E")


def site_ids(trial: Trial) -> dict[int, str]:
    return {pk: f"{n:02d}" for n, pk in enumerate(trial.sites.order_by("pk").values_list("pk", flat=True), start=1)}


# --- rows ---------------------------------------------------------------------------------------------


def dm_rows(trial: Trial, audience: Audience) -> Iterator[dict]:
    sites = site_ids(trial)
    for p in selectors.subjects(trial, audience).iterator(chunk_size=500):
        tz = p.site.time_zone
        armcd, arm_text = arm(p.dose_level, p.dose_label, p.dose_cells)
        treated = p.first_start is not None
        screen_failed = p.study_id is None
        reference = local_date(p.first_start, tz)
        screening = getattr(p, "screening", None)
        age_on = reference or local_date(p.enrolled_at, tz) or (screening.screening_date if screening else None)
        end = p.withdrawn_on or p.last_visit_on or local_date(p.last_end, tz)
        yield {
            "STUDYID": trial.registry_id, "DOMAIN": "DM", "USUBJID": usubjid(trial, p), "SUBJID": subjid(p),
            "RFSTDTC": dtc(p.first_start, tz), "RFENDTC": dtc(end, tz), "RFXSTDTC": dtc(p.first_start, tz),
            "RFXENDTC": dtc(p.last_end, tz), "RFICDTC": dtc(p.consent_at, tz), "DTHDTC": dtc(p.death_on),
            "DTHFL": "Y" if p.death_on else "", "SITEID": sites.get(p.site_id, ""),
            "BRTHDTC": dtc(p.date_of_birth), "AGE": age_years(p.date_of_birth, age_on) if age_on else "",
            "AGEU": "YEARS" if age_on else "", "SEX": p.sex, "ARMCD": armcd, "ARM": arm_text,
            "ACTARMCD": armcd if treated else "", "ACTARM": arm_text if treated else "",
            "ARMNRS": "SCREEN FAILURE" if screen_failed else ("" if treated else "ASSIGNED, NOT TREATED"),
            "COUNTRY": COUNTRIES.get(p.site.country.strip().lower(), p.site.country.upper()[:3]),
        }  # fmt: skip


def ex_rows(trial: Trial, audience: Audience) -> Iterator[dict]:
    for i, shown in with_release(audience, selectors.infusions(trial, audience).iterator(chunk_size=500)):
        tz = i.participant.site.time_zone
        adjusted = (i.stop_reason if shown else WITHHELD) if i.status == "stopped_early" else ""
        reference = local_date(i.reference_start, tz)
        finished = i.status in ("completed", "stopped_early")
        yield {
            "STUDYID": trial.registry_id, "DOMAIN": "EX", "USUBJID": usubjid(trial, i.participant),
            "EXSEQ": i.sequence, "EXTRT": trial.product,
            "EXDOSE": i.cells_administered if finished else i.cells_planned,
            "EXDOSU": "CELLS", "EXDOSFRM": "SUSPENSION", "EXDOSFRQ": "ONCE", "EXROUTE": "INTRAVENOUS",
            "EXLOT": i.product_lot, "EXADJ": adjusted,
            "EPOCH": "TREATMENT", "EXSTDTC": dtc(i.started_at, tz), "EXENDTC": dtc(i.ended_at, tz),
            "EXSTDY": study_day(local_date(i.started_at, tz), reference),
            "EXENDY": study_day(local_date(i.ended_at, tz), reference),
        }  # fmt: skip


def _sequenced(rows: Iterable[tuple[str, dict]], seq: str) -> Iterator[dict]:
    """Number each subject's records 1, 2, … in the order given (rows come grouped by subject)."""
    current, n = None, 0
    for subject, row in rows:
        n = n + 1 if subject == current else 1
        current = subject
        yield {**row, seq: n}


def ae_rows(trial: Trial, audience: Audience) -> Iterator[dict]:
    def raw():
        for e, shown in with_release(audience, selectors.adverse_events(trial, audience).iterator(chunk_size=500)):
            tz = e.participant.site.time_zone
            decode = e.ctcae_term.term if e.ctcae_term else (e.ctcae_term_text if shown else WITHHELD)
            reference = local_date(e.reference_start, tz)
            yield e.participant_id, {
                "STUDYID": trial.registry_id, "DOMAIN": "AE", "USUBJID": usubjid(trial, e.participant),
                "AESPID": str(e.pk), "AETERM": e.verbatim_term if shown else WITHHELD, "AEDECOD": decode,
                "AEBODSYS": e.ctcae_term.soc if e.ctcae_term else "", "AESEV": SEVERITY[e.worst_grade],
                "AETOXGR": str(e.worst_grade), "AESER": yn(e.serious), "AESDTH": yn(e.sae_death),
                "AESLIFE": yn(e.sae_life_threatening), "AESHOSP": yn(e.sae_hospitalisation),
                "AESDISAB": yn(e.sae_disability), "AESCONG": yn(e.sae_congenital_anomaly),
                "AESMIE": yn(e.sae_other_important), "AEREL": RELATIONSHIP[e.relationship],
                "AEACN": ACTION.get(e.action_taken, ""), "AECONTRT": yn(e.action_taken == "treatment_given"),
                "AEOUT": OUTCOME[e.outcome], "AESTDTC": dtc(e.onset_date), "AEENDTC": dtc(e.resolution_date),
                "AESTDY": study_day(e.onset_date, reference), "AEENDY": study_day(e.resolution_date, reference),
            }  # fmt: skip

    return _sequenced(raw(), "AESEQ")


def ds_rows(trial: Trial, audience: Audience) -> Iterator[dict]:
    def raw():
        for p in selectors.subjects(trial, audience).iterator(chunk_size=500):
            tz = p.site.time_zone
            base = {"STUDYID": trial.registry_id, "DOMAIN": "DS", "USUBJID": usubjid(trial, p)}
            if audience.consent and p.consent_at:
                yield p.pk, base | {"DSTERM": "INFORMED CONSENT OBTAINED", "DSDECOD": "INFORMED CONSENT OBTAINED",
                                    "DSCAT": "PROTOCOL MILESTONE", "EPOCH": "SCREENING",
                                    "DSSTDTC": dtc(p.consent_at, tz)}  # fmt: skip
            if p.study_id is None:
                screening = getattr(p, "screening", None)
                yield p.pk, base | {"DSTERM": "SCREEN FAILURE", "DSDECOD": "SCREEN FAILURE",
                                    "DSCAT": "DISPOSITION EVENT", "EPOCH": "SCREENING",
                                    "DSSTDTC": dtc(screening.screening_date if screening else None)}  # fmt: skip
            elif p.death_on:
                yield p.pk, base | {"DSTERM": "DEATH", "DSDECOD": "DEATH", "DSCAT": "DISPOSITION EVENT",
                                    "EPOCH": "FOLLOW-UP", "DSSTDTC": dtc(p.death_on)}  # fmt: skip
            elif p.status in DISPOSITION:
                decode = DISPOSITION[p.status]
                # A free-text reason may name people: only roles that see identifiers get it.
                term = (p.withdrawal_reason or decode) if audience.identified else decode
                yield p.pk, base | {"DSTERM": term, "DSDECOD": decode, "DSCAT": "DISPOSITION EVENT",
                                    "EPOCH": "FOLLOW-UP", "DSSTDTC": dtc(p.withdrawn_on)}  # fmt: skip

    return _sequenced(raw(), "DSSEQ")


def ie_rows(trial: Trial, audience: Audience) -> Iterator[dict]:
    texts = {c.code: c.text for c in trial.criteria.all()}

    def raw():
        for a in selectors.unmet_criteria(trial, audience).iterator(chunk_size=500):
            participant = a.screening.participant
            inclusion = a.kind == "inclusion"
            result = "N" if inclusion else "Y"  # an inclusion not met, or an exclusion present
            yield participant.pk, {
                "STUDYID": trial.registry_id, "DOMAIN": "IE", "USUBJID": usubjid(trial, participant),
                "IETESTCD": a.code[:8], "IETEST": texts.get(a.code, a.code)[:200],
                "IECAT": "INCLUSION" if inclusion else "EXCLUSION", "IEORRES": result, "IESTRESC": result,
                "EPOCH": "SCREENING", "IEDTC": dtc(a.screening.screening_date),
            }  # fmt: skip

    return _sequenced(raw(), "IESEQ")


ROWS = {"DM": dm_rows, "EX": ex_rows, "AE": ae_rows, "DS": ds_rows, "IE": ie_rows}


def record_count(domain: str, trial: Trial, audience: Audience) -> int:
    """How many rows the domain will hold, known before the first is written (one COUNT; DS, whose
    subjects give 0 to 2 rows each, is walked once without writing)."""
    return {
        "DM": lambda: selectors.subjects(trial, audience).count(),
        "DS": lambda: sum(1 for _ in ds_rows(trial, audience)),
        "EX": lambda: selectors.infusions(trial, audience).count(),
        "AE": lambda: selectors.adverse_events(trial, audience).count(),
        "IE": lambda: selectors.unmet_criteria(trial, audience).count(),
    }[domain]()


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields text to stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([row.get(name, "") for name in header])


def domain_csv(domain: str, trial: Trial, audience: Audience) -> Iterator[str]:
    return csv_lines([v.name for v in columns(domain, audience)], ROWS[domain](trial, audience))


SHOWN_TO = {"": "every role that may export the domain", "identified": "roles that see identifiers (site staff, "
            "investigators)", "consent": "roles that read consent records", "screening": "roles that read "
            "screening data"}  # fmt: skip
DEFINE_HEADER = ["Dataset", "Variable", "Label", "Data Type", "Origin", "Role", "Controlled Terms or Format",
                 "Included for"]  # fmt: skip


def define_csv(audience: Audience) -> Iterator[str]:
    """The define-style listing: every variable of every domain, with what it holds and who gets it."""
    rows = (
        dict(zip(DEFINE_HEADER, (domain, v.name, v.label, v.type, v.origin, v.role, v.codelist,
                                 SHOWN_TO[v.shown_to]), strict=True))
        for domain, variables in DOMAINS.items() for v in variables
    )  # fmt: skip
    return csv_lines(DEFINE_HEADER, rows)
