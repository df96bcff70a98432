"""Part 11 signatures: the password re-entered, the keyed digest chained per trial, the quorum."""

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from cohorts.models import Cohort
from core.errors import ErrorCode, InvalidInput, PermissionDenied, RuleViolation, require_permission
from core.history import audit
from safety.models import SafetyReview, SignatureFailure, SignOff
from safety.selectors import (
    canonical_json,
    sha256_hex,
)
from safety.services.decisions import review_make_effective
from safety.services.gate import check_review_data_current
from safety.signing import signature_digest, signing_key_id
from trial.models import Trial

SIGNING_LOCKOUT_FAILURES = 5
SIGNING_LOCKOUT_MINUTES = 30


def _signing_locked(user) -> bool:
    since = timezone.now() - timezone.timedelta(minutes=SIGNING_LOCKOUT_MINUTES)
    return SignatureFailure.objects.filter(user=user, at__gte=since).count() >= SIGNING_LOCKOUT_FAILURES


def review_sign(*, review: SafetyReview, user, password: str, meaning: str, comment: str = "") -> SignOff:
    """A committee member signs by re-entering the password (Part 11 §11.200); never by a token alone.

    At quorum (the chair among the signers) and with no rejection the decision takes effect in the
    same transaction. A wrong password is refused, logged and counts toward a lockout.
    """
    require_permission(user, "safety.sign_review", "sign safety reviews (committee members only)")
    key_id = signing_key_id()  # a server without its signature key refuses before the password is tried
    if meaning not in SignOff.Meaning.values:
        raise InvalidInput(
            ErrorCode.INVALID_MEANING,
            "The meaning of a signature is approve or reject.",
            {"meaning": ["approve or reject"]},
        )
    if _signing_locked(user):
        raise PermissionDenied(
            ErrorCode.SIGNING_LOCKED,
            f"Too many wrong passwords: signing is locked for "
            f"{SIGNING_LOCKOUT_MINUTES} minutes. Contact the administrator.",
        )
    if not password or not user.check_password(password):
        SignatureFailure.objects.create(user=user, review=review, at=timezone.now())  # kept: outside the signing txn
        raise PermissionDenied(
            ErrorCode.WRONG_PASSWORD, "The password is not correct: nothing was signed.", {"password": ["Incorrect."]}
        )
    full_name = user.get_full_name().strip()
    if not full_name:
        raise RuleViolation(ErrorCode.SIGNER_NAME_MISSING, "Your account has no full name: a signature must show it.")
    with transaction.atomic():
        # Lock order trial → cohort → review, as the stopping rule's participant → cohort → review; each row
        # once. The trial's lock serialises its signature chain; a decision that takes effect at this
        # signature does so on these locked rows.
        trial = Trial.objects.select_for_update().get(pk=review.trial_id)
        cohort = Cohort.objects.select_for_update(of=("self",)).select_related("dose_level").get(pk=review.cohort_id)
        review = SafetyReview.objects.select_for_update(of=("self",)).get(pk=review.pk)
        cohort.trial = review.trial = trial
        review.cohort = cohort
        if review.state != SafetyReview.State.OPEN:
            raise RuleViolation(ErrorCode.REVIEW_CLOSED, f"This review is {review.get_state_display().lower()}.")
        if not review.decision:
            raise RuleViolation(ErrorCode.NO_DECISION, "There is no proposed decision to sign yet.")
        if sha256_hex(canonical_json(review.snapshot)) != review.snapshot_digest:
            raise RuleViolation(
                ErrorCode.SNAPSHOT_TAMPERED,
                "The review's data no longer matches what was opened: it cannot be signed. Open a new review.",
            )
        if review.signatures.filter(signer=user).exists():
            raise RuleViolation(ErrorCode.ALREADY_SIGNED, "You have already signed this review.")
        check_review_data_current(review)
        last = SignOff.objects.filter(trial=trial).order_by("-sequence").first()
        signed_at = timezone.now()
        previous = last.digest if last else ""
        signature = SignOff.objects.create(
            trial=trial,
            review=review,
            sequence=(last.sequence + 1) if last else 1,
            signer=user,
            signer_full_name=full_name,
            meaning=meaning,
            decision=review.decision,
            mtd_level=review.declared_mtd_level,
            comment=comment,
            signed_at=signed_at,
            previous_digest=previous,
            key_id=key_id,
            digest=signature_digest(
                review_id=review.pk,
                snapshot_digest=review.snapshot_digest,
                decision=review.decision,
                signer_id=user.pk,
                signer_name=full_name,
                meaning=meaning,
                signed_at=signed_at,
                previous=previous,
                key_id=key_id,
                mtd_level=review.declared_mtd_level,
            ),
        )
        if meaning == SignOff.Meaning.REJECT:
            review.state = SafetyReview.State.REJECTED
            review.decided_at = signed_at
            audit(review, by=user, reason=f"Rejected by {full_name}: the decision does not take effect").save()
        elif _quorum_reached(review, trial):
            review_make_effective(review, trial=trial, cohort=cohort, by=user)
    return signature


def _quorum_reached(review: SafetyReview, trial: Trial) -> bool:
    """At least the trial's quorum of approvals, no rejection, and the chair among the approvers (the
    permission held by the user itself, as ``is_chair`` and the database's gate trigger read it)."""
    tally = review.signatures.aggregate(
        approvals=Count("pk", filter=Q(meaning=SignOff.Meaning.APPROVE)),
        rejections=Count("pk", filter=Q(meaning=SignOff.Meaning.REJECT)),
    )
    if tally["rejections"] or tally["approvals"] < trial.review_quorum:
        return False
    return review.signatures.filter(
        meaning=SignOff.Meaning.APPROVE,
        signer__user_permissions__content_type__app_label="safety",
        signer__user_permissions__codename="chair_review",
    ).exists()
