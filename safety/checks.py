"""System checks of the safety app: signatures need their key (``check --deploy``)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def signature_key_configured(app_configs=None, **kwargs) -> list[Error]:
    """A deployment without a signature key could neither sign nor verify (21 CFR 11.70)."""
    if settings.SIGNATURE_KEYS and settings.SIGNATURE_KEY_ID in settings.SIGNATURE_KEYS:
        return []
    return [
        Error(
            "No signature key: SIGNATURE_KEYS is empty or SIGNATURE_KEY_ID is not one of its ids.",
            hint="Set SIGNATURE_KEYS='key-id:secret' (32+ characters) in the environment, or write var/signature_keys "
            "(make install does). Keep every old key id listed so its signatures stay verifiable.",
            id="safety.E001",
        )
    ]
