"""The signature digest: an HMAC-SHA256 under a key that is not in the database (21 CFR 11.70, 11.10(e)).

Keys are ``settings.SIGNATURE_KEYS`` (key id → secret, from the environment or ``var/signature_keys``);
``settings.SIGNATURE_KEY_ID`` signs new signatures and every signature stores the id it was made with, so a
rotated-out key that stays listed keeps its signatures verifiable. Rows signed before keyed digests carry
``SignOff.LEGACY_KEY_ID`` and an unkeyed SHA-256 over the same fields; they are verified as such and reported
as legacy (see docs/architecture.md, "Signatures").
"""

import hashlib
import hmac

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from safety.models import SignOff
from safety.selectors import canonical_json, sha256_hex

LEGACY_KEY_ID = SignOff.LEGACY_KEY_ID


class UnknownSignatureKey(LookupError):
    """A signature names a key id that ``SIGNATURE_KEYS`` does not hold (removed, or never configured)."""


def signing_key_id() -> str:
    """The key id that signs now; a server without a configured key cannot sign (and ``check --deploy`` fails)."""
    key_id = settings.SIGNATURE_KEY_ID
    if not key_id or key_id not in settings.SIGNATURE_KEYS:
        raise ImproperlyConfigured("No signature key is configured (SIGNATURE_KEYS / SIGNATURE_KEY_ID): cannot sign.")
    return key_id


def signature_digest(
    *,
    review_id: int,
    snapshot_digest: str,
    decision: str,
    signer_id: int,
    signer_name: str,
    meaning: str,
    signed_at,
    previous: str,
    key_id: str,
    mtd_level: int | None = None,
) -> str:
    """The digest over what was signed: the review's snapshot, the decision (with the MTD dose the committee
    declared, if any), the signer, the meaning, the time and the previous signature of the trial (a chain:
    changing any earlier row breaks it). Keyed: HMAC-SHA256 under ``key_id``, which is bound in too."""
    signed = {
        "review": review_id,
        "snapshot": snapshot_digest,
        "decision": decision,
        "signer": signer_id,
        "signer_name": signer_name,
        "meaning": meaning,
        "signed_at": signed_at.isoformat(),
        "previous": previous,
    }
    if mtd_level is not None:  # absent for every other signature, so earlier digests stay valid
        signed["mtd_level"] = mtd_level
    if key_id == LEGACY_KEY_ID:
        return sha256_hex(canonical_json(signed))
    secret = settings.SIGNATURE_KEYS.get(key_id)
    if secret is None:
        raise UnknownSignatureKey(key_id)
    signed["key"] = key_id
    return hmac.new(secret.encode("utf-8"), canonical_json(signed).encode("utf-8"), hashlib.sha256).hexdigest()


def recomputed_digest(signature: SignOff) -> str:
    """The digest ``signature`` should carry, from its own fields and its review's snapshot digest."""
    return signature_digest(
        review_id=signature.review_id,
        snapshot_digest=signature.review.snapshot_digest,
        decision=signature.decision,
        signer_id=signature.signer_id,
        signer_name=signature.signer_full_name,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
        previous=signature.previous_digest,
        key_id=signature.key_id,
        mtd_level=signature.mtd_level,
    )


def digest_matches(signature: SignOff) -> bool:
    """Whether the stored digest is the one its key gives (constant-time compare; an unknown key: no)."""
    try:
        expected = recomputed_digest(signature)
    except UnknownSignatureKey:
        return False
    return hmac.compare_digest(expected, signature.digest)
