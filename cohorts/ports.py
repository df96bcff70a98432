"""What the cohorts app reads from the safety data, without importing ``safety``.

``safety`` builds on ``cohorts`` (an adverse event belongs to a participant, a review to a cohort), so
``cohorts`` does not import ``safety``: the import contract (``[tool.importlinter]`` in
``pyproject.toml``, and ``tests/test_architecture.py``) forbids it. Three things here need safety data:

* the sentinel hold (``cohorts.selectors.infusion_hold``): the rest of a cohort waits while its
  sentinel has a candidate or confirmed DLT;
* the participant's page: her adverse events on the timeline of her infusion, DLT window and visits;
* the cohort's page: each participant's evaluability for dose escalation.

The safety app provides them when Django starts (``SafetyConfig.ready()`` calls
``provide_safety_reader`` with ``safety.cohort_reader.SafetyReaderForCohorts``). Until then reading
fails loudly (``ImproperlyConfigured``): the sentinel hold never answers "no DLT" for want of the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:  # annotations only: the port is imported by selectors that these modules import
    from cohorts.models import Participant
    from cohorts.selectors.participants import TimelineEntry
    from trial.models import Trial


class EvaluabilityVerdict(Protocol):
    status: str
    reason: str

    @property
    def needs_replacement(self) -> bool: ...


class SafetyReader(Protocol):
    def participant_has_dlt_candidate(self, participant: Participant) -> bool:
        """True while any of the participant's adverse events is a DLT candidate or a confirmed DLT."""
        ...

    def adverse_event_timeline(self, participant: Participant) -> list[TimelineEntry]:
        """The participant's adverse events as timeline entries (kind ``adverse_event``), oldest onset first."""
        ...

    def participant_evaluability(self, trial: Trial) -> Mapping[int, EvaluabilityVerdict]:
        """Each enrolled participant's evaluability under the trial's rule (participant id -> verdict)."""
        ...


_reader: SafetyReader | None = None


def provide_safety_reader(reader: SafetyReader) -> None:
    """Called once, by the safety app at start-up."""
    global _reader
    _reader = reader


def safety_reader() -> SafetyReader:
    if _reader is None:
        raise ImproperlyConfigured(
            "cohorts has no safety reader: the safety app provides it in SafetyConfig.ready(); "
            "is 'safety' in INSTALLED_APPS?"
        )
    return _reader
