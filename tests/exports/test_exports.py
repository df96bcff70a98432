"""Exports of the seeded trial over the API: the FHIR R4 Bundle validates, the SDTM domains have their
variables and one row per record, the dossier's digest matches the review and its PDF manifests every
signature; each role gets exactly what the API would show it."""

import csv
import io
import json
import re

import pytest
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from cohorts.models import CriterionAssessment, Infusion, Participant
from core.roles import DATA_MANAGER, INVESTIGATOR, SAFETY_COMMITTEE, SPONSOR
from exports import sdtm
from safety.models import AdverseEvent
from safety.selectors import canonical_json, sha256_hex, snapshot_for_sponsor
from tests.dashboard.seed import VIEW, frozen, seed_trial
from tests.factories import UserFactory, token_for

pytestmark = pytest.mark.django_db
BASE = "/api/v1/trials/NCT06949137/export"
# Direct identifiers and staff usernames of the seeded trial: none may reach a sponsor.
IDENTIFIERS = ("1960-03-15", "SCR-FAIL-1", "P01", "C2P1", "coordinator", "investigator", "src0", "WL")


@pytest.fixture
def seeded(nct_trial):
    return seed_trial(nct_trial)


def reader(role: str, name: str | None = None) -> APIClient:
    user = UserFactory(username=name or role.lower().replace(" ", "-"), first_name="Reader", last_name="Person",
                       role=role, is_staff=role != SPONSOR)  # fmt: skip
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse), "exports are streamed"
    return b"".join(response.streaming_content).decode()


def rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


# --- FHIR R4 ------------------------------------------------------------------------------------------

R4_CODES = {  # the R4 (4.0.1) value sets of the coded elements the bundle fills
    "ResearchStudy.status": {"active", "administratively-completed", "approved", "closed-to-accrual",
                             "closed-to-accrual-and-intervention", "completed", "disapproved", "in-review",
                             "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention",
                             "withdrawn"},
    "ResearchSubject.status": {"candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study",
                               "on-study", "on-study-intervention", "on-study-observation", "pending-on-study",
                               "potential-candidate", "screening", "withdrawn"},
    "MedicationAdministration.status": {"in-progress", "not-done", "on-hold", "completed", "entered-in-error",
                                        "stopped", "unknown"},
    "AdverseEvent.seriousness": {"Non-serious", "Serious"},
    "AdverseEvent.outcome": {"resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown"},
    "AdverseEvent.severity": {"mild", "moderate", "severe"},
}  # fmt: skip


def test_the_fhir_bundle_validates_as_r4_and_holds_one_resource_per_record(seeded):
    from fhir.resources import __fhir_version__
    from fhir.resources.bundle import Bundle

    assert __fhir_version__ == "4.0.1"
    with frozen(VIEW):
        response = reader(SPONSOR).get(f"{BASE}/fhir/")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    text = body(response)
    bundle = Bundle.parse_raw(text)  # raises on any structural error against the R4 models
    data = json.loads(text)
    kinds = [e["resource"]["resourceType"] for e in data["entry"]]
    assert int(response["X-Export-Records"]) == len(kinds)
    assert kinds.count("ResearchStudy") == 1
    assert kinds.count("ResearchSubject") == Participant.objects.exclude(study_id=None).count() == 6
    assert kinds.count("MedicationAdministration") == Infusion.objects.count() == 6
    assert kinds.count("AdverseEvent") == AdverseEvent.objects.count()
    assert len(bundle.entry) == len(kinds)
    study = data["entry"][0]["resource"]
    assert [a["name"] for a in study["arm"]] == ["DL1", "DL2", "DL3"]
    urls = {e["fullUrl"] for e in data["entry"]}
    for entry in data["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        if f"{kind}.status" in R4_CODES:
            assert resource["status"] in R4_CODES[f"{kind}.status"]
        if kind == "ResearchSubject":
            assert resource["study"]["reference"] in urls and resource["assignedArm"] in {"DL1", "DL2"}
            assert re.fullmatch(r"9137-\d{3}", resource["individual"]["identifier"]["value"])
        if kind == "AdverseEvent":
            for element in ("seriousness", "outcome", "severity"):
                assert resource[element]["coding"][0]["code"] in R4_CODES[f"AdverseEvent.{element}"]
            (grade,) = resource["extension"]
            assert grade["valueCodeableConcept"]["coding"][0]["system"].endswith("Thesaurus.owl")
            assert resource["suspectEntity"][0]["instance"]["reference"] in urls
    serious = [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == "AdverseEvent"
               and e["resource"]["seriousness"]["coding"][0]["code"] == "Serious"]  # fmt: skip
    assert len(serious) == AdverseEvent.objects.filter(serious=True).count() == 2
    for text_item in IDENTIFIERS:
        assert text_item not in text, text_item


# --- SDTM -------------------------------------------------------------------------------------------

REQUIRED = {  # SDTMIG 3.4 Required variables (and the Expected ones this product fills)
    "DM": {"STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "SITEID", "AGE", "AGEU", "SEX", "ARMCD",
           "ARM", "ACTARMCD", "ACTARM", "ARMNRS", "COUNTRY"},
    "EX": {"STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXDOSFRM", "EXROUTE", "EXSTDTC",
           "EXENDTC"},
    "AE": {"STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEDECOD", "AEBODSYS", "AESEV", "AETOXGR", "AESER",
           "AEREL", "AEACN", "AEOUT", "AESTDTC", "AEENDTC", "AESDTH", "AESLIFE", "AESHOSP"},
    "DS": {"STUDYID", "DOMAIN", "USUBJID", "DSSEQ", "DSTERM", "DSDECOD", "DSCAT", "DSSTDTC"},
    "IE": {"STUDYID", "DOMAIN", "USUBJID", "IESEQ", "IETESTCD", "IETEST", "IECAT", "IEORRES", "IESTRESC"},
}  # fmt: skip
TERMS = {"SEX": {"F", "M", "U"}, "AGEU": {"YEARS"}, "AESER": {"Y", "N"}, "AESEV": {"MILD", "MODERATE", "SEVERE"},
         "AEOUT": {"RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
                   "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN"},
         "EXROUTE": {"INTRAVENOUS"}, "IECAT": {"INCLUSION", "EXCLUSION"}, "IEORRES": {"Y", "N"},
         "AETOXGR": {"1", "2", "3", "4", "5"}, "DSCAT": {"DISPOSITION EVENT", "PROTOCOL MILESTONE"}}  # fmt: skip


def test_each_sdtm_domain_has_its_variables_controlled_terms_and_one_row_per_record(seeded):
    client = reader(DATA_MANAGER)
    with frozen(VIEW):
        got = {domain: client.get(f"{BASE}/sdtm/{domain}.csv") for domain in sdtm.DOMAINS}
    tables = {domain: rows(response) for domain, response in got.items()}
    for domain, table in tables.items():
        assert got[domain].status_code == 200 and got[domain]["Content-Type"].startswith("text/csv")
        assert REQUIRED[domain] <= set(table[0]), domain
        assert {r["STUDYID"] for r in table} == {"NCT06949137"} and {r["DOMAIN"] for r in table} == {domain}
        for name, allowed in TERMS.items():
            if name in table[0]:
                assert {r[name] for r in table} - {""} <= allowed, (domain, name)
        seq = next((n for n in table[0] if n.endswith("SEQ")), None)
        if seq:  # (USUBJID, --SEQ) identifies a record
            assert len({(r["USUBJID"], r[seq]) for r in table}) == len(table), domain
    dm = tables["DM"]
    assert len(dm) == len({r["USUBJID"] for r in dm}) == 7  # six enrolled and the screen failure
    assert int(got["DM"]["X-Export-Records"]) == 7
    assert {r["ARMCD"] for r in dm} == {"DL1", "DL2", ""}
    assert [r["ARMNRS"] for r in dm if not r["ARMCD"]] == ["SCREEN FAILURE"]
    assert all(r["USUBJID"] == f"NCT06949137-{r['SUBJID']}" for r in dm)
    assert len(tables["EX"]) == Infusion.objects.count() and {r["EXSTDY"] for r in tables["EX"]} == {"1"}
    assert len(tables["AE"]) == AdverseEvent.objects.count() == int(got["AE"]["X-Export-Records"])
    assert {r["AEDECOD"] for r in tables["AE"]} >= {"Headache", "Fall", "Fever", "Febrile neutropenia"}
    fall = next(r for r in tables["AE"] if r["AEDECOD"] == "Fall")
    assert (fall["AESER"], fall["AESHOSP"], fall["AETOXGR"], fall["AESEV"], fall["AEREL"]) == (
        "Y", "Y", "3", "SEVERE", "NOT RELATED")  # fmt: skip
    unmet = CriterionAssessment.objects.filter(verdict="not_met").count()
    assert len(tables["IE"]) == unmet >= 1 and {r["IEORRES"] for r in tables["IE"]} == {"Y"}
    consents = [r for r in tables["DS"] if r["DSDECOD"] == "INFORMED CONSENT OBTAINED"]
    assert len(consents) == 7 and [r["DSDECOD"] for r in tables["DS"]].count("SCREEN FAILURE") == 1
    assert "BRTHDTC" not in dm[0]  # the data manager reads pseudonymised participants, as in the API


def test_a_sponsor_gets_no_identifier_no_consent_date_no_screen_failure_and_no_ie(seeded):
    client = reader(SPONSOR)
    with frozen(VIEW):
        dm = client.get(f"{BASE}/sdtm/DM.csv")
        ds = client.get(f"{BASE}/sdtm/DS.csv")
        ie = client.get(f"{BASE}/sdtm/IE.csv")
        texts = [body(dm), body(ds)] + [body(client.get(f"{BASE}/sdtm/{d}.csv")) for d in ("EX", "AE")]
    assert ie.status_code == 403 and ie.json()["code"] == "permission_denied"
    header = texts[0].splitlines()[0].split(",")
    assert "BRTHDTC" not in header and "RFICDTC" not in header and "AGE" in header
    assert len(texts[0].splitlines()) == 1 + 6  # the enrolled only
    assert "INFORMED CONSENT OBTAINED" not in texts[1] and "SCREEN FAILURE" not in texts[1]
    for text in texts:
        for item in IDENTIFIERS:
            assert not re.search(rf"\b{re.escape(item)}\b", text), item


def test_an_investigator_who_sees_identifiers_gets_the_date_of_birth(seeded):
    with frozen(VIEW):
        dm = rows(reader(INVESTIGATOR, "inv-reader").get(f"{BASE}/sdtm/DM.csv"))
    assert {r["BRTHDTC"] for r in dm} == {"1960-03-15"}
    assert {r["AGE"] for r in dm if r["ARMCD"]} == {"66"}


def test_an_unknown_domain_is_a_404_and_anonymous_is_a_401(seeded):
    assert reader(DATA_MANAGER).get(f"{BASE}/sdtm/XX.csv").status_code == 404
    assert APIClient().get(f"{BASE}/fhir/").status_code == 401


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/reviews/999999/dossier.pdf?format=pdf", 404),
        ("/api/v1/reviews/999999/dossier.pdf", 404),
        ("/api/v1/trials/NCT00000000/export/sdtm/AE.csv?format=csv", 404),
        (f"{BASE}/sdtm/XX.csv?format=csv", 404),
        ("/api/v1/trials/NCT00000000/export/fhir/?format=fhir", 404),
    ],
)
def test_an_export_error_answers_json_whatever_format_was_asked_for(seeded, url, status):
    response = reader(SAFETY_COMMITTEE).get(url)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"code", "message", "fields"}


def test_the_define_listing_names_every_exported_variable(seeded):
    with frozen(VIEW):
        listing = rows(reader(SPONSOR).get(f"{BASE}/define/"))
    listed = {(r["Dataset"], r["Variable"]) for r in listing}
    for domain, variables in sdtm.DOMAINS.items():
        assert {(domain, v.name) for v in variables} == {pair for pair in listed if pair[0] == domain}
    brthdtc = next(r for r in listing if r["Variable"] == "BRTHDTC")
    assert "identifiers" in brthdtc["Included for"]


@pytest.mark.parametrize("extra", [0, 12])
def test_the_ae_export_takes_a_constant_number_of_queries(seeded, django_assert_max_num_queries, extra):
    from tests.dashboard.seed import DAY, T0, record_event

    person = Participant.objects.get(study_id="9137-004")
    for n in range(extra):
        record_event(person, at=T0 + 70 * DAY, term="Headache", grade=1, relationship="not_related",
               onset_date=person.dlt_window_start + __import__("datetime").timedelta(days=n % 20))  # fmt: skip
    client = reader(DATA_MANAGER)
    with frozen(VIEW), django_assert_max_num_queries(12):
        table = rows(client.get(f"{BASE}/sdtm/AE.csv"))
    assert len(table) == AdverseEvent.objects.count()


# --- the escalation dossier -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [SPONSOR, SAFETY_COMMITTEE, DATA_MANAGER])
def test_the_dossier_digest_matches_the_review_snapshot_and_the_chain_is_intact(seeded, role):
    review = seeded.escalation
    with frozen(VIEW):
        response = reader(role).get(f"/api/v1/reviews/{review.pk}/dossier.json")
    assert response.status_code == 200
    data = json.loads(response.content)
    # A sponsor's copy leaves out unreleased free text and staff names; the digest is over the frozen snapshot.
    assert data["snapshot"] == (snapshot_for_sponsor(review.snapshot) if role == SPONSOR else review.snapshot)
    assert data["snapshot_redacted_for_sponsor"] is (role == SPONSOR)
    assert data["snapshot_digest"]["recorded"] == review.snapshot_digest == sha256_hex(canonical_json(review.snapshot))
    assert data["snapshot_digest"]["matches"] is True
    assert data["recommendation"]["protocol_recommends"] == "escalate" and data["decision"]["decision"] == "escalate"
    assert [(s["printed_name"], s["meaning"]) for s in data["signatures"]] == [
        (f"Member Number{i}", "approve") for i in range(3)]  # fmt: skip
    assert all(s["digest_verified"] for s in data["signatures"])
    assert data["chain_verification"]["trial_chain_intact"] is True
    assert data["opened_cohort"]["sequence"] == 2 and data["opened_cohort"]["dose_level"] == 2
    for item in ("coordinator", "investigator", "src0", "src1", "src2"):
        assert f'"{item}"' not in response.content.decode()


def test_the_dossier_pdf_manifests_every_signers_printed_name_time_and_meaning(seeded):
    from zoneinfo import ZoneInfo

    from pypdf import PdfReader

    review = seeded.escalation
    with frozen(VIEW):
        response = reader(SAFETY_COMMITTEE).get(f"/api/v1/reviews/{review.pk}/dossier.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    flat = re.sub(r"\s+", " ", text)
    assert review.snapshot_digest in flat.replace(" ", "") and "MATCHES" in flat
    for signature in review.signatures.all():
        when = signature.signed_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
        line = f"Signed by {signature.signer_full_name} on {when} (Asia/Shanghai) — meaning: Approve"
        assert line in flat, line
    assert "INTACT" in flat and "Cohort 2 at dose level 2" in flat


def test_a_partly_signed_review_has_a_dossier_that_says_no_cohort_opened(seeded):
    with frozen(VIEW):
        data = reader(SPONSOR).get(f"/api/v1/reviews/{seeded.open_review.pk}/dossier.json").json()
    assert data["review"]["state"] == "open" and data["opened_cohort"] is None
    assert [s["printed_name"] for s in data["signatures"]] == ["Member Number0"]
