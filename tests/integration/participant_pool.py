"""Building blocks of the PostgreSQL concurrency tests: a fresh copy of the protocol per repetition,
and a pool of eligible participants made in milliseconds (not collected as tests)."""

import json
from pathlib import Path

from cohorts import services
from cohorts.models import ConsentRecord, CriterionAssessment, JudgmentConfirmation, Participant, ScreeningRecord
from cohorts.selectors import current_consent
from tests.conftest import PROTOCOL_FILE
from tests.factories import assign_existing_users, consent_document
from trial.models import Trial
from trial.services import protocol_load


def trial_copy(tmp_path: Path, *, registry_id: str, cohort_size: int) -> Trial:
    """The NCT06949137 protocol under another registry ID and cohort size, loaded as any protocol is."""
    data = json.loads(PROTOCOL_FILE.read_text(encoding="utf-8"))
    data["registry_id"] = registry_id
    parameters = data["parameters"]
    parameters["cohort_size"] = cohort_size
    parameters["max_per_dose_level"] = max(parameters["max_per_dose_level"], cohort_size)
    path = tmp_path / f"{registry_id}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    protocol_load(path=path)
    trial = Trial.objects.get(registry_id=registry_id)
    assign_existing_users(trial=trial)  # the staff made so far work at its site (site scoping, trial.access)
    return trial


def clone_eligible(template: Participant, *, trial: Trial, count: int, prefix: str) -> list[int]:
    """``count`` copies of an eligible participant (screening, judgments, consent) in ``trial``.

    ``eligible_participant`` goes through every service and takes about a second; copying its rows
    with bulk_create takes milliseconds. ``enroll_participant`` evaluates every criterion and the
    consent again itself under the cohort lock, so a copy that was not really eligible would surface
    as ``not_eligible``/``no_consent`` and fail the test.
    """
    screening = template.screening
    assert not screening.fractures.exists(), "the template has no fractures to copy"
    consent = current_consent(template)
    assert consent is not None
    judgments = list(template.judgments.all())
    assert judgments, "the template has its investigator judgments"
    site = trial.sites.order_by("pk").first()
    document = consent_document(trial)
    screening_values = {
        field.attname: getattr(screening, field.attname)
        for field in ScreeningRecord._meta.concrete_fields
        if field.name not in {"id", "participant", "verdict", "evaluated_at"}
    }
    # Test setup only: bulk_create writes no history rows, which nothing here reads.
    people = Participant.objects.bulk_create(
        Participant(
            trial=trial,
            site=site,
            screening_number=f"{prefix}{i:03d}",
            date_of_birth=template.date_of_birth,
            sex=template.sex,
            initials=template.initials,
        )
        for i in range(count)
    )
    ScreeningRecord.objects.bulk_create(ScreeningRecord(participant=p, **screening_values) for p in people)
    JudgmentConfirmation.objects.bulk_create(
        JudgmentConfirmation(
            participant=p,
            code=j.code,
            satisfied=j.satisfied,
            note=j.note,
            confirmed_by_id=j.confirmed_by_id,
            confirmed_at=j.confirmed_at,
        )
        for p in people
        for j in judgments
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            participant=p,
            document=document,
            signed_at=consent.signed_at,
            obtained_by_id=consent.obtained_by_id,
            witness_name=consent.witness_name,
        )
        for p in people
    )
    # The first copy goes through the real evaluation; running it 50 times per repetition would
    # dominate the file's runtime, so the others get the same verdicts, assessments and status it
    # got. Their rows are identical, so they would evaluate identically.
    first, rest = people[0], people[1:]
    assert services.eligibility_evaluate(participant=first).eligible
    assessments = list(CriterionAssessment.objects.filter(screening__participant=first))
    CriterionAssessment.objects.bulk_create(
        CriterionAssessment(
            screening_id=record_id, code=a.code, kind=a.kind, verdict=a.verdict, reason=a.reason, order=a.order
        )
        for record_id in ScreeningRecord.objects.filter(participant__in=rest).values_list("pk", flat=True)
        for a in assessments
    )
    evaluated = ScreeningRecord.objects.get(participant=first)
    assert evaluated.verdict == ScreeningRecord.Verdict.ELIGIBLE
    ScreeningRecord.objects.filter(participant__in=rest).update(
        verdict=evaluated.verdict, evaluated_at=evaluated.evaluated_at
    )
    Participant.objects.filter(pk__in=[p.pk for p in rest]).update(status=Participant.Status.ELIGIBLE)
    ids = [p.pk for p in people]
    assert Participant.objects.filter(pk__in=ids, status=Participant.Status.ELIGIBLE).count() == count
    return ids
