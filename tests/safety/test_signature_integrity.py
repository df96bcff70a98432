"""Signatures cannot be forged or dropped unseen (21 CFR 11.10(e), 11.70): the attacks of issue 12, each one
refused by the database or found by verify_signatures.

Each attack succeeded unseen before the keyed digest and the chain head: a forged insert with a recomputed
SHA-256 was accepted and verified, a deleted tail with its review reopened left an intact-looking chain, and
TRUNCATE emptied the table. The PostgreSQL attacker turns triggers off with ``session_replication_role``;
on SQLite the same attack drops the triggers and puts them back.
"""

import contextlib
import datetime as dt
import hashlib
import hmac
import importlib
import json
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from safety import services
from safety.models import SafetyReview, SignatureChainHead, SignatureFailure, SignOff
from safety.selectors import canonical_json, sha256_hex
from safety.signing import LEGACY_KEY_ID, signature_digest
from tests.conftest import TEST_SIGNATURE_KEY_ID, TEST_SIGNATURE_KEYS
from tests.safety import test_escalation_gate as gate
from tests.safety.test_escalation_gate import AFTER_WINDOWS, HOUR, PASSWORD, committee, frozen

pytestmark = pytest.mark.django_db
reviewed = gate.reviewed  # the fixture: the low-dose cohort infused, its review open
chain_triggers = importlib.import_module("safety.migrations.0008_signature_keys_and_chain_head")


def _sign(review, members, meanings):
    review.refresh_from_db()
    with frozen(AFTER_WINDOWS):
        if not review.decision:
            services.review_propose(review=review, decision="escalate", by=members[0])
    with frozen(AFTER_WINDOWS + HOUR):
        return [
            services.review_sign(review=review, user=member, password=PASSWORD, meaning=meaning)
            for member, meaning in zip(members, meanings, strict=False)
        ]


@contextlib.contextmanager
def triggers_off():
    """What a database superuser can do: write with every user trigger out of the way."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
        return
    editor = _InTransaction()  # SQLite's DDL is transactional: the test's rollback undoes it too
    chain_triggers.drop_triggers(None, editor)
    try:
        yield
    finally:
        chain_triggers.reinstall(None, editor)


class _InTransaction:
    """The part of a schema editor the trigger migrations use, inside the test's transaction."""

    connection = connection

    def execute(self, sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)


def _unkeyed(review, signer, *, sequence, previous, signed_at, meaning="approve") -> dict:
    """A row as an attacker with database access computes it: every public field, the old unkeyed SHA-256."""
    review.refresh_from_db()
    fields = {
        "trial": review.trial, "review": review, "sequence": sequence, "signer": signer,
        "signer_full_name": signer.get_full_name(), "meaning": meaning, "decision": review.decision,
        "signed_at": signed_at, "previous_digest": previous,
    }  # fmt: skip
    fields["digest"] = signature_digest(
        review_id=review.pk, snapshot_digest=review.snapshot_digest, decision=review.decision, signer_id=signer.pk,
        signer_name=fields["signer_full_name"], meaning=meaning, signed_at=signed_at, previous=previous,
        key_id=LEGACY_KEY_ID,
    )  # fmt: skip
    return fields


def _codes(problems) -> set[str]:
    return {p["code"] for p in problems}


def test_a_signature_is_an_hmac_under_the_configured_key_and_not_an_unkeyed_sha256(reviewed):
    members = committee()
    (signature,) = _sign(reviewed, members, ["approve"])
    signed = {
        "review": reviewed.pk, "snapshot": reviewed.snapshot_digest, "decision": "escalate",
        "signer": members[0].pk, "signer_name": "Member Number0", "meaning": "approve",
        "signed_at": signature.signed_at.isoformat(), "previous": "",
    }  # fmt: skip
    secret = TEST_SIGNATURE_KEYS[TEST_SIGNATURE_KEY_ID].encode()
    keyed = hmac.new(secret, canonical_json({**signed, "key": TEST_SIGNATURE_KEY_ID}).encode(), hashlib.sha256)
    assert signature.key_id == TEST_SIGNATURE_KEY_ID
    assert signature.digest == keyed.hexdigest() != sha256_hex(canonical_json(signed))
    assert services.verify_signatures() == []


def test_a_forged_insert_that_continues_the_chain_with_a_recomputed_digest_is_detected(reviewed):
    members = committee()
    (first,) = _sign(reviewed, members, ["approve"])
    forged = _unkeyed(
        reviewed, members[1], sequence=2, previous=first.digest, signed_at=first.signed_at + HOUR
    )  # the attacker claims the real key id: the trigger lets a linked row in, only the key could make its HMAC
    SignOff.objects.create(**forged, key_id=TEST_SIGNATURE_KEY_ID)
    problems = services.verify_signatures()
    assert [(p["code"], p["sequence"]) for p in problems] == [("digest_mismatch", 2)]
    assert "signature #2 (Member Number1)" in problems[0]["message"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"key_id": LEGACY_KEY_ID}, "an unkeyed (legacy) digest"),
        ({"sequence": 3}, "skips a sequence number"),
        ({"sequence": 1}, "reuses the head's sequence number"),
        ({"previous_digest": "0" * 64}, "links to another digest than the head's"),
    ],
)
def test_a_forged_insert_that_does_not_continue_the_chain_from_its_head_is_refused(reviewed, change, why):
    members = committee()
    (first,) = _sign(reviewed, members, ["approve"])
    forged = _unkeyed(reviewed, members[1], sequence=2, previous=first.digest, signed_at=first.signed_at + HOUR)
    forged = {"key_id": TEST_SIGNATURE_KEY_ID, **forged, **change}
    with pytest.raises(DatabaseError), transaction.atomic():
        SignOff.objects.create(**forged)
    assert SignOff.objects.count() == 1, why


def test_the_chain_head_advances_with_each_signature_and_cannot_be_changed_by_hand(reviewed):
    members = committee()
    signatures = _sign(reviewed, members, ["approve", "approve"])
    heads = list(SignatureChainHead.objects.values_list("count", "head_digest", "signature_id"))
    assert heads == [(1, signatures[0].digest, signatures[0].pk), (2, signatures[1].digest, signatures[1].pk)]
    with pytest.raises(DatabaseError), transaction.atomic():
        SignatureChainHead.objects.filter(count=2).update(count=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        SignatureChainHead.objects.filter(count=2).delete()
    with pytest.raises(DatabaseError), transaction.atomic():  # a head row no signature stands behind
        SignatureChainHead.objects.create(trial=reviewed.trial, count=3, head_digest="f" * 64, signature=signatures[1])
    assert SignatureChainHead.objects.count() == 2


def test_a_dropped_tail_with_the_triggers_off_and_the_review_reopened_is_detected(reviewed):
    members = committee()
    _sign(reviewed, members, ["approve", "reject"])  # the rejection ends the review
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.REJECTED
    out = StringIO()
    with transaction.atomic():  # rolled back at the end: the test database's own teardown checks foreign keys
        with triggers_off():
            with connection.cursor() as cursor:  # raw SQL: the ORM would refuse to orphan the head row (PROTECT)
                cursor.execute("DELETE FROM safety_signoff WHERE sequence = 2")
            SafetyReview.objects.filter(pk=reviewed.pk).update(state=SafetyReview.State.OPEN, decided_at=None)
        with pytest.raises(SystemExit) as exited:
            call_command("verify_signatures", stdout=out)
        transaction.set_rollback(True)
    report = json.loads(out.getvalue())
    assert exited.value.code == 1 and report["intact"] is False
    assert _codes(report["problems"]) == {"head_mismatch", "review_reopened"}
    assert report["heads"]["NCT06949137"]["count"] == 2 and report["signatures_checked"] == 1
    assert "records 2 signatures but 1 exist" in report["problems"][0]["message"]


def test_emptied_signature_tables_are_detected_by_the_decided_review_they_decided(reviewed):
    members = committee()
    _sign(reviewed, members, ["approve"] * 3)
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE
    with triggers_off():
        SignatureChainHead.objects.all().delete()
        SignOff.objects.all().delete()
    problems = services.verify_signatures()
    assert _codes(problems) == {"decided_review_unsigned"}
    assert "is effective with 0 approvals" in problems[0]["message"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE safety_signoff CASCADE",
        "TRUNCATE safety_signaturechainhead",
        "TRUNCATE safety_signaturechainhead, safety_signoff",
    ],
)
def test_truncating_the_signatures_or_their_chain_head_is_refused(reviewed, statement):
    members = committee()
    _sign(reviewed, members, ["approve"])
    with connection.cursor() as cursor:  # as in a session of its own: the deferred foreign-key checks done
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match="cannot be truncated"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert (SignOff.objects.count(), SignatureChainHead.objects.count()) == (1, 1)


def test_a_key_rotation_keeps_the_old_signatures_verifiable(reviewed, settings):
    members = committee()
    _sign(reviewed, members[:1], ["approve"])
    settings.SIGNATURE_KEYS = {**TEST_SIGNATURE_KEYS, "test-key-2": "a-second-test-signature-key-0123456789abcdef"}
    settings.SIGNATURE_KEY_ID = "test-key-2"
    _sign(reviewed, members[1:], ["approve", "approve"])
    reviewed.refresh_from_db()
    assert reviewed.state == SafetyReview.State.EFFECTIVE
    assert list(SignOff.objects.values_list("key_id", flat=True)) == [TEST_SIGNATURE_KEY_ID] + ["test-key-2"] * 2
    assert services.verify_signatures() == []
    settings.SIGNATURE_KEYS = {"test-key-2": settings.SIGNATURE_KEYS["test-key-2"]}  # the old key dropped: found
    assert [(p["code"], p["sequence"]) for p in services.verify_signatures()] == [("unknown_key", 1)]


def test_verifying_with_a_wrong_key_finds_every_signature_it_made(reviewed, settings):
    members = committee()
    _sign(reviewed, members, ["approve", "approve"])
    settings.SIGNATURE_KEYS = {TEST_SIGNATURE_KEY_ID: "not-the-key-these-signatures-were-made-with-0123"}
    assert [(p["code"], p["sequence"]) for p in services.verify_signatures()] == [
        ("digest_mismatch", 1),
        ("digest_mismatch", 2),
    ]


def test_legacy_unkeyed_signatures_verify_as_legacy_and_a_keyed_one_continues_their_chain(reviewed):
    """As migration 0008 leaves a database signed before keyed digests: legacy rows and their head rows."""
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    legacy = _unkeyed(
        reviewed, members[0], sequence=1, previous="", signed_at=(AFTER_WINDOWS + HOUR).astimezone(dt.UTC)
    )
    with triggers_off():
        old = SignOff.objects.create(**legacy, key_id=LEGACY_KEY_ID)
        SignatureChainHead.objects.create(trial=reviewed.trial, count=1, head_digest=old.digest, signature=old)
    _sign(reviewed, members[1:2], ["approve"])
    report = services.signature_report()
    assert (report["signatures_checked"], report["legacy_unkeyed"], report["problems"]) == (2, 1, [])
    assert SignOff.objects.get(sequence=2).previous_digest == old.digest


def test_a_server_without_a_signature_key_refuses_to_sign_before_the_password_is_tried(reviewed, settings):
    members = committee()
    with frozen(AFTER_WINDOWS):
        services.review_propose(review=reviewed, decision="escalate", by=members[0])
    settings.SIGNATURE_KEYS = {}
    with pytest.raises(ImproperlyConfigured, match="No signature key"):
        services.review_sign(review=reviewed, user=members[0], password="wrong", meaning="approve")
    assert (SignOff.objects.count(), SignatureFailure.objects.count()) == (0, 0)
