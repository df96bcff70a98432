"""Signature verification (21 CFR 11.10(e), 11.70): every digest, every link, the chain head and the count.

A read, not a write: it recomputes each signature's keyed digest, follows the chain of previous digests,
compares the chain with the trial's head (the append-only table the database writes with each signature),
and checks that every decided review still has the signatures that decided it. ``signature_report`` gives
the whole result; ``verify_signatures`` only the problems. A problem is a dict with a stable ``code``
(``PROBLEM_CODES``), the trial, the signature's sequence (or None) and a message in plain words.
"""

from django.db.models import Count, Q

from safety.models import SafetyReview, SignatureChainHead, SignOff
from safety.selectors import canonical_json, sha256_hex
from safety.signing import LEGACY_KEY_ID, UnknownSignatureKey, recomputed_digest
from trial.models import Trial

PROBLEM_CODES = {
    "snapshot_changed": "the review's snapshot no longer matches the digest recorded when it opened",
    "sequence_gap": "the trial's signatures are not numbered 1, 2, 3… (one is missing or out of place)",
    "chain_broken": "a signature's previous digest is not its predecessor's digest",
    "digest_mismatch": "the digest is not the HMAC of what was signed under its key (forged, or a wrong key)",
    "unknown_key": "the signature names a key id that SIGNATURE_KEYS does not hold",
    "decision_differs": "the signed decision or MTD dose differs from the review's",
    "head_mismatch": "the chain head (count, head digest) does not match the signatures found",
    "head_rows_missing": "the append-only chain-head table has lost rows",
    "decided_review_unsigned": "a decided review no longer has the signatures that decided it",
    "review_reopened": "a review its history shows decided is open again",
}


def _problem(trial: Trial, code: str, message: str, sequence: int | None = None) -> dict:
    return {"trial": trial.registry_id, "sequence": sequence, "code": code, "message": message}


def _chain_problems(trial: Trial, signatures: list[SignOff]) -> list[dict]:
    problems = []
    previous = ""
    for position, signature in enumerate(signatures, start=1):
        review = signature.review
        where = f"{trial.registry_id} signature #{signature.sequence} ({signature.signer_full_name})"

        def add(code: str, what: str, seq=signature.sequence, where=where) -> None:
            problems.append(_problem(trial, code, f"{where}: {what}", seq))

        if signature.sequence != position:
            add("sequence_gap", f"expected signature #{position} here: a signature is missing before it")
        if sha256_hex(canonical_json(review.snapshot)) != review.snapshot_digest:
            add("snapshot_changed", f"review {review.pk}'s snapshot was changed after it was opened")
        if signature.previous_digest != previous:
            add("chain_broken", "the chain breaks here (previous digest does not match)")
        try:
            if recomputed_digest(signature) != signature.digest:
                add("digest_mismatch", f"the digest does not match what was signed (key {signature.key_id!r})")
        except UnknownSignatureKey:
            add("unknown_key", f"signed with key {signature.key_id!r}, which SIGNATURE_KEYS does not hold")
        if signature.decision != review.decision:
            add("decision_differs", f"signed decision '{signature.decision}' differs from the review's")
        if signature.mtd_level != review.declared_mtd_level:
            add("decision_differs", f"signed MTD dose {signature.mtd_level} differs from the review's")
        previous = signature.digest
    return problems


def _head_problems(trial: Trial, signatures: list[SignOff]) -> tuple[list[dict], dict | None]:
    heads = list(SignatureChainHead.objects.filter(trial=trial).order_by("count").values_list("count", "head_digest"))
    found = len(signatures)
    if not heads:
        if not found:
            return [], None
        message = f"{trial.registry_id}: {found} signatures but no chain head (signatures inserted around it)"
        return [_problem(trial, "head_mismatch", message)], None
    count, head_digest = heads[-1]
    head = {"count": count, "head_digest": head_digest}
    problems = []
    if count != found:
        problems.append(
            _problem(
                trial,
                "head_mismatch",
                f"{trial.registry_id}: the chain head records {count} signatures but {found} exist: "
                + ("signatures were removed from the table" if found < count else "signatures bypassed the head"),
            )
        )
    elif signatures and head_digest != signatures[-1].digest:
        problems.append(
            _problem(trial, "head_mismatch", f"{trial.registry_id}: the last signature is not the chain head", count)
        )
    if [c for c, _ in heads] != list(range(1, count + 1)):
        problems.append(
            _problem(trial, "head_rows_missing", f"{trial.registry_id}: the chain-head table lost rows below {count}")
        )
    by_sequence = {s.sequence: s.digest for s in signatures}
    for position, digest in heads:
        if position in by_sequence and by_sequence[position] != digest:
            message = f"{trial.registry_id} signature #{position}: its digest is not the one the head recorded"
            problems.append(_problem(trial, "head_mismatch", message, position))
    return problems, head


def _review_problems(trial: Trial) -> list[dict]:
    problems = []
    decided = SafetyReview.objects.filter(
        trial=trial, state__in=(SafetyReview.State.EFFECTIVE, SafetyReview.State.REJECTED)
    ).annotate(
        approvals=Count("signatures", filter=Q(signatures__meaning=SignOff.Meaning.APPROVE)),
        rejections=Count("signatures", filter=Q(signatures__meaning=SignOff.Meaning.REJECT)),
    )
    for review in decided:
        if review.state == SafetyReview.State.EFFECTIVE:
            ok = review.approvals >= 1 and not review.rejections
        else:
            ok = review.rejections >= 1
        if not ok:
            problems.append(
                _problem(
                    trial,
                    "decided_review_unsigned",
                    f"{trial.registry_id} review {review.pk} is {review.state} with {review.approvals} approvals "
                    f"and {review.rejections} rejections on record: its signatures were removed",
                )
            )
    reopened = (
        SafetyReview.history.filter(
            trial_id=trial.pk, state__in=(SafetyReview.State.EFFECTIVE, SafetyReview.State.REJECTED)
        )
        .filter(id__in=SafetyReview.objects.filter(trial=trial, state=SafetyReview.State.OPEN).values("pk"))
        .values_list("id", "state")
        .distinct()
    )
    for review_id, state in reopened:
        message = f"{trial.registry_id} review {review_id} was {state} (its history says so) and is open again"
        problems.append(_problem(trial, "review_reopened", message))
    return problems


def signature_report(*, trial: Trial | None = None) -> dict:
    """Verify every signature of ``trial`` (default: every trial): the result as plain JSON values."""
    trials = [trial] if trial else list(Trial.objects.order_by("registry_id"))
    problems: list[dict] = []
    heads: dict[str, dict | None] = {}
    checked = legacy = 0
    for current in trials:
        signatures = list(SignOff.objects.filter(trial=current).select_related("review").order_by("sequence"))
        checked += len(signatures)
        legacy += sum(1 for s in signatures if s.key_id == LEGACY_KEY_ID)
        problems += _chain_problems(current, signatures)
        found, heads[current.registry_id] = _head_problems(current, signatures)
        problems += found + _review_problems(current)
    return {
        "signatures_checked": checked,
        "legacy_unkeyed": legacy,
        "intact": not problems,
        "heads": heads,
        "problems": problems,
    }


def verify_signatures(*, trial: Trial | None = None) -> list[dict]:
    """The problems ``signature_report`` finds (empty: every signature and the chain are intact)."""
    return signature_report(trial=trial)["problems"]
