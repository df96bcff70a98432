"""The safety data the cohorts app reads through its port (``cohorts.ports``), provided at start-up by
``SafetyConfig.ready()``: cohorts never imports safety."""

from collections.abc import Mapping

from cohorts.models import Participant
from cohorts.selectors import TimelineEntry
from safety import dlt
from safety.selectors import participant_ae_timeline, participant_evaluability, participant_has_dlt_candidate
from trial.models import Trial


class SafetyReaderForCohorts:
    """Implements ``cohorts.ports.SafetyReader`` with the safety selectors."""

    def participant_has_dlt_candidate(self, participant: Participant) -> bool:
        return participant_has_dlt_candidate(participant)

    def participant_evaluability(self, trial: Trial) -> Mapping[int, dlt.Evaluability]:
        return participant_evaluability(trial)

    def adverse_event_timeline(self, participant: Participant) -> list[TimelineEntry]:
        """Each adverse event as a timeline entry: alarming (grade 3 or more, serious, or a DLT candidate or
        confirmed DLT) in red, on the same date axis as the infusion, the DLT window and the visits."""
        entries = []
        for ae in participant_ae_timeline(participant):
            alarming = ae["worst_grade"] >= 3 or ae["serious"] or ae["dlt_status"] in ("candidate", "confirmed")
            entries.append(
                TimelineEntry(
                    "adverse_event",
                    f"Adverse event: {ae['term']}, grade {ae['worst_grade']}" + (", serious" if ae["serious"] else ""),
                    f"{ae['onset']} – {ae['resolution'] or 'ongoing'}",
                    f"day {ae['onset_day']} of the DLT window" if ae["in_dlt_window"] else "",
                    ae["dlt_status_display"],
                    "warn" if alarming else "",
                )
            )
        return entries
