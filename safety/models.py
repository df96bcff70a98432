"""Adverse events, DLT assessment and expedited-reporting clocks (safety reviews follow below)."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from cohorts.models import Participant
from core.history import audited_history
from safety.simulation_report import SimulationReport  # noqa: F401 - a model of this app, in its own module


class CtcaeTerm(models.Model):
    """A CTCAE v5.0 term with its system organ class (a small table loaded as data)."""

    term = models.CharField(max_length=200, unique=True)
    soc = models.CharField("system organ class", max_length=200)
    meddra_code = models.CharField(max_length=16, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["soc", "term"]
        verbose_name = "CTCAE term"

    def __str__(self) -> str:
        return f"{self.term} ({self.soc})"


class AdverseEvent(models.Model):
    free_text_fields = ("verbatim_term", "ctcae_term_text", "dlt_reason")

    class Relationship(models.TextChoices):
        NOT_RELATED = "not_related", "Not related"
        UNLIKELY = "unlikely", "Unlikely"
        POSSIBLE = "possible", "Possible"
        PROBABLE = "probable", "Probable"
        DEFINITE = "definite", "Definite"

    class Outcome(models.TextChoices):
        RECOVERED = "recovered", "Recovered/resolved"
        RECOVERING = "recovering", "Recovering/resolving"
        NOT_RECOVERED = "not_recovered", "Not recovered/not resolved"
        SEQUELAE = "sequelae", "Recovered with sequelae"
        FATAL = "fatal", "Fatal"
        UNKNOWN = "unknown", "Unknown"

    class Action(models.TextChoices):
        NONE = "none", "None"
        INFUSION_INTERRUPTED = "infusion_interrupted", "Infusion interrupted"
        INFUSION_STOPPED = "infusion_stopped", "Infusion stopped"
        TREATMENT_GIVEN = "treatment_given", "Concomitant treatment given"
        NOT_APPLICABLE = "not_applicable", "Not applicable (after infusion)"

    class DltStatus(models.TextChoices):
        NOT_CANDIDATE = "not_candidate", "Not a DLT candidate"
        CANDIDATE = "candidate", "DLT candidate (investigator to decide)"
        CONFIRMED = "confirmed", "DLT confirmed"
        REJECTED = "rejected", "DLT rejected"

    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="adverse_events")
    verbatim_term = models.CharField(max_length=300)
    ctcae_term = models.ForeignKey(CtcaeTerm, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    ctcae_term_text = models.CharField(
        "CTCAE term (free text)", max_length=200, blank=True, help_text="Where the term is missing from the table."
    )
    onset_date = models.DateField()
    resolution_date = models.DateField(null=True, blank=True)
    grade = models.PositiveSmallIntegerField("CTCAE grade")
    worst_grade = models.PositiveSmallIntegerField(editable=False)
    serious = models.BooleanField(default=False)
    sae_death = models.BooleanField("results in death", default=False)
    sae_life_threatening = models.BooleanField("life-threatening", default=False)
    sae_hospitalisation = models.BooleanField("hospitalisation or its prolongation", default=False)
    sae_disability = models.BooleanField("persistent or significant disability", default=False)
    sae_congenital_anomaly = models.BooleanField("congenital anomaly", default=False)
    sae_other_important = models.BooleanField("other important medical event", default=False)
    relationship = models.CharField("relationship to the product", max_length=12, choices=Relationship.choices)
    expected = models.BooleanField("expected per the investigator's brochure", default=False)
    infusion_reaction = models.BooleanField("infusion-related reaction", default=False)
    action_taken = models.CharField(max_length=24, choices=Action.choices, default=Action.NONE)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.NOT_RECOVERED)
    site_aware_at = models.DateTimeField("site became aware at")
    information_received_at = models.DateTimeField(
        "latest information received at",
        null=True,
        blank=True,
        help_text="When the site received the information of the latest report or follow-up. A clock that a "
        "follow-up starts (the event became serious, a SUSAR, fatal or life-threatening) counts from here.",
    )
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    dlt_status = models.CharField(
        max_length=16, choices=DltStatus.choices, default=DltStatus.NOT_CANDIDATE, editable=False
    )
    dlt_reason = models.TextField(blank=True, editable=False, help_text="Why it is (not) a candidate, or the decision")
    dlt_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    dlt_decided_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = audited_history()

    class Meta:
        ordering = ["-onset_date", "-pk"]
        permissions = [("decide_dlt", "Can confirm or reject a DLT candidate")]
        indexes = [
            # The list's order (newest onset first) and its onset-date filter, whatever the trial's size.
            models.Index(F("onset_date").desc(), F("id").desc(), name="ae_onset_desc"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=5), name="ae_grade_1_to_5"),
            models.CheckConstraint(
                condition=Q(worst_grade__gte=F("grade"), worst_grade__lte=5), name="ae_worst_grade_at_least_grade"
            ),
            models.CheckConstraint(
                condition=Q(resolution_date__isnull=True) | Q(resolution_date__gte=F("onset_date")),
                name="ae_resolution_not_before_onset",
            ),
            models.CheckConstraint(
                condition=Q(serious=False)
                | Q(sae_death=True)
                | Q(sae_life_threatening=True)
                | Q(sae_hospitalisation=True)
                | Q(sae_disability=True)
                | Q(sae_congenital_anomaly=True)
                | Q(sae_other_important=True),
                name="ae_serious_has_a_criterion",
            ),
            models.CheckConstraint(condition=~Q(grade=5) | Q(outcome="fatal"), name="ae_grade5_is_fatal"),
            models.CheckConstraint(condition=~Q(outcome="fatal") | Q(grade=5), name="ae_fatal_is_grade5"),
            # ICH E2A II.B: an event that results in death is serious, with the death criterion.
            models.CheckConstraint(
                condition=(~Q(grade=5) & ~Q(outcome="fatal")) | Q(serious=True, sae_death=True),
                name="ae_death_is_serious",
            ),
            models.CheckConstraint(
                condition=Q(information_received_at__isnull=True) | Q(information_received_at__gte=F("site_aware_at")),
                name="ae_information_not_before_awareness",
            ),
            models.CheckConstraint(
                condition=Q(serious=True)
                | Q(
                    sae_death=False,
                    sae_life_threatening=False,
                    sae_hospitalisation=False,
                    sae_disability=False,
                    sae_congenital_anomaly=False,
                    sae_other_important=False,
                ),
                name="ae_criterion_only_when_serious",
            ),
            models.CheckConstraint(
                condition=Q(ctcae_term__isnull=False) | ~Q(ctcae_term_text=""), name="ae_has_a_term"
            ),
            models.CheckConstraint(
                condition=Q(relationship__in=["not_related", "unlikely", "possible", "probable", "definite"]),
                name="ae_relationship_in_list",
            ),
            models.CheckConstraint(
                condition=~Q(dlt_status__in=["confirmed", "rejected"]) | Q(dlt_decided_by__isnull=False),
                name="ae_dlt_decision_has_investigator",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.verbatim_term} (grade {self.grade}) — {self.participant}"

    @property
    def fatal_or_life_threatening(self) -> bool:
        return self.sae_death or self.sae_life_threatening or self.outcome == self.Outcome.FATAL


class AdverseEventTally(models.Model):
    """How many of a participant's adverse events have each (worst grade, seriousness, DLT status).

    Derived data, kept by database triggers on ``safety_adverseevent`` (insert, update, delete; installed by
    migration 0008), so it is exact for every write path, bulk and raw SQL included, in the writing
    transaction. The trial summary adds these rows up instead of scanning the events: its cost grows with
    the trial's participants, not its events. Never written by Python.
    """

    participant = models.ForeignKey(Participant, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    worst_grade = models.PositiveSmallIntegerField()
    serious = models.BooleanField()
    dlt_status = models.CharField(max_length=16)
    events = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "worst_grade", "serious", "dlt_status"], name="ae_tally_one_row_per_key"
            ),
            models.CheckConstraint(condition=Q(events__gte=0), name="ae_tally_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.events} × grade {self.worst_grade}"


class ReportingClock(models.Model):
    """An expedited-reporting deadline: due at, done at, by whom and to whom."""

    free_text_fields = ("reported_to",)

    class Kind(models.TextChoices):
        SPONSOR_24H = "sponsor_24h", "Sponsor notification (24 h)"
        SUSAR_7D = "susar_7d", "SUSAR to regulators (7 days)"
        SUSAR_15D = "susar_15d", "SUSAR to regulators (15 days)"
        SUSAR_FOLLOWUP = "susar_followup", "SUSAR complete report (8 more days)"

    adverse_event = models.ForeignKey(AdverseEvent, on_delete=models.PROTECT, related_name="clocks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    recipient = models.CharField(max_length=200)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reported_to = models.CharField(max_length=200, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["due_at"]
        constraints = [
            # A clock is started once per event and kind, however often the event is saved.
            models.UniqueConstraint(fields=["adverse_event", "kind"], name="clock_unique_kind_per_event"),
            models.CheckConstraint(condition=Q(due_at__gt=F("started_at")), name="clock_due_after_start"),
            models.CheckConstraint(
                condition=Q(done_at__isnull=True) | Q(done_by__isnull=False), name="clock_done_has_who"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.adverse_event_id}"


class SafetyReview(models.Model):
    """The committee's review of a cohort: a frozen snapshot of what it saw, a proposal, signatures.

    A review whose decision took effect (or was rejected) cannot change: a correction is a new review.
    """

    free_text_fields = ("reason", "rationale")

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled (DLT windows complete)"
        UNSCHEDULED = "unscheduled", "Unscheduled (stopping rule)"
        CHAIR = "chair", "Called by the chair"

    class State(models.TextChoices):
        OPEN = "open", "Open for signatures"
        EFFECTIVE = "effective", "Decision effective"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn (superseded by a new review)"

    class Decision(models.TextChoices):
        ESCALATE = "escalate", "Escalate to the next dose level"
        EXPAND = "expand", "Expand: another cohort at the same dose"
        DEESCALATE = "deescalate", "De-escalate to the lower dose level"
        STOP = "stop", "Stop the trial"
        MTD = "mtd", "End escalation: record the MTD"
        RESUME = "resume", "Resume after the pause"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="safety_reviews")
    cohort = models.ForeignKey("cohorts.Cohort", on_delete=models.PROTECT, related_name="safety_reviews")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    reason = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, editable=False)
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    snapshot = models.JSONField(help_text="What the committee saw, frozen when the review opened.")
    snapshot_digest = models.CharField(max_length=64)
    decision = models.CharField(max_length=12, choices=Decision.choices, blank=True)
    rationale = models.TextField(blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    proposed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    resulting_cohort = models.ForeignKey(
        "cohorts.Cohort", on_delete=models.PROTECT, null=True, blank=True, related_name="opened_by_review"
    )
    mtd_dose_level = models.ForeignKey(
        "trial.DoseLevel", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    declared_mtd_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The dose level the committee declares the MTD when it departs from the "
        "design's MTD selection (a treated dose, with a rationale). Empty: the design's selection.",
    )
    mtd_statement = models.CharField(
        max_length=300, blank=True, help_text="What the review records about the MTD when it takes effect."
    )
    mtd_departs_from_rule = models.BooleanField(default=False)
    acknowledged_visits = models.JSONField(
        default=list,
        blank=True,
        help_text="Ids of the unrecorded DLT-window visits the committee's rationale "
        "addresses; a decision takes effect only when every such visit is recorded or listed here.",
    )

    history = audited_history()

    class Meta:
        ordering = ["-opened_at"]
        permissions = [
            ("sign_review", "Can sign safety reviews (committee member)"),
            ("chair_review", "Chairs the safety review committee"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["cohort"], condition=Q(state="open"), name="review_one_open_per_cohort"),
            models.CheckConstraint(
                condition=~Q(state="effective") | (~Q(decision="") & Q(decided_at__isnull=False)),
                name="review_effective_has_decision",
            ),
            models.CheckConstraint(
                condition=Q(mtd_dose_level__isnull=True, declared_mtd_level__isnull=True) | Q(decision="mtd"),
                name="review_mtd_only_with_mtd_decision",
            ),
        ]

    def __str__(self) -> str:
        return f"Safety review {self.pk} of cohort {self.cohort.sequence} ({self.get_state_display()})"


class SignOff(models.Model):
    """A committee member's electronic signature (21 CFR Part 11 §11.50, §11.70, §11.200).

    Bound to what was signed by an HMAC-SHA256 (under the key ``key_id`` names, kept out of the
    database) over the review's canonical snapshot, the decision, the signer, the meaning and the time,
    chained to the trial's previous signature. Rows are never updated or deleted, and a new row must
    link to the trial's chain head (database triggers; safety migration 0008).
    """

    free_text_fields = ("comment",)

    LEGACY_KEY_ID = "sha256-legacy"  # rows signed before keyed digests: an unkeyed SHA-256, verified as such

    class Meaning(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="signatures")
    review = models.ForeignKey(SafetyReview, on_delete=models.PROTECT, related_name="signatures")
    sequence = models.PositiveIntegerField(help_text="Position in the trial's signature chain")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_full_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=8, choices=Meaning.choices)
    decision = models.CharField(max_length=12, choices=SafetyReview.Decision.choices)
    mtd_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="With decision mtd: the dose level the committee declared, if it departs "
        "from the design's selection (bound into the digest).",
    )
    comment = models.TextField(blank=True)
    signed_at = models.DateTimeField()
    previous_digest = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(
        max_length=32, help_text="The id of the HMAC key (settings.SIGNATURE_KEYS) the digest was made with."
    )

    class Meta:
        ordering = ["trial", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["review", "signer"], name="signoff_one_per_member_per_review"),
            models.UniqueConstraint(fields=["trial", "sequence"], name="signoff_chain_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.signer_full_name}: {self.get_meaning_display()} ({self.signed_at:%Y-%m-%d %H:%M} UTC)"


class SignatureChainHead(models.Model):
    """The head of a trial's signature chain after each signature: one row per signature, append-only.

    Written by the database itself (a trigger after each insert into ``safety_signoff``, so in the same
    transaction as the signature); its rows can never be updated, deleted or truncated. A trial's head is
    its row with the highest ``count``: a signature deleted from the tail, or an emptied signature table,
    leaves a head that ``verify_signatures`` finds no longer matching.
    """

    trial = models.ForeignKey("trial.Trial", on_delete=models.PROTECT, related_name="+")
    count = models.PositiveIntegerField(help_text="Signatures of the trial up to and including this one")
    head_digest = models.CharField(max_length=64)
    signature = models.OneToOneField(SignOff, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["trial", "count"]
        constraints = [models.UniqueConstraint(fields=["trial", "count"], name="chainhead_unique_count_per_trial")]

    def __str__(self) -> str:
        return f"Chain head of trial {self.trial_id}: {self.count} signatures, {self.head_digest[:12]}…"


class IntegrityAlert(models.Model):
    """A failed integrity check (the daily signature verification): what broke, when it was found.

    One row per kind of check and day (the beat task may run twice: the unique key decides). Append-only
    (``core.append_only``): no acknowledgement is stored here; its safety reminders say whom it reached.
    """

    append_only = True

    class Kind(models.TextChoices):
        SIGNATURES = "signatures", "Signature chain (verify_signatures)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    detected_on = models.DateField(help_text="UTC date of the check")
    detected_at = models.DateTimeField()
    signatures_checked = models.PositiveIntegerField()
    problem_count = models.PositiveIntegerField()
    problems = models.JSONField(help_text="The structured problems verify_signatures reported")

    class Meta:
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "detected_on"], name="integrityalert_one_per_kind_per_day"),
            models.CheckConstraint(condition=Q(problem_count__gte=1), name="integrityalert_has_problems"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.problem_count} problem(s) on {self.detected_on}"


class SignatureFailure(models.Model):
    """A refused signing attempt (wrong password); counts toward the signer's lockout.

    An append-only log: the database refuses UPDATE, DELETE and TRUNCATE (``core.append_only``).
    """

    append_only = True

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    review = models.ForeignKey(SafetyReview, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "at"])]

    def __str__(self) -> str:
        return f"Refused signature by {self.user_id} at {self.at:%Y-%m-%d %H:%M}"
