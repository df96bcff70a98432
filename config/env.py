"""Small, strict readers for settings that come from the environment."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no, on/off).")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


_KEY_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
MIN_SIGNATURE_KEY_LENGTH = 32


def parse_signature_keys(text: str, *, source: str) -> dict[str, str]:
    """``id:secret`` pairs, separated by commas or new lines (blank lines and ``#`` comments ignored).

    Key ids are short names (letters, digits, ``-_.``, at most 32) stored on every signature; secrets are at
    least 32 characters. The order is kept: without ``SIGNATURE_KEY_ID`` the last key listed signs.
    """
    keys: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, secret = entry.partition(":")
        key_id, secret = key_id.strip(), secret.strip()
        if not sep or not key_id or len(key_id) > 32 or not set(key_id) <= _KEY_ID_CHARS:
            raise ImproperlyConfigured(
                f"{source}: {key_id or entry[:8]!r} is not 'key-id:secret' (id: letters, digits, -_.)."
            )
        if len(secret) < MIN_SIGNATURE_KEY_LENGTH:
            raise ImproperlyConfigured(
                f"{source}: the secret of key {key_id!r} is shorter than {MIN_SIGNATURE_KEY_LENGTH}."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"{source}: key id {key_id!r} is listed twice.")
        keys[key_id] = secret
    return keys


def current_signature_key_id(keys: dict[str, str], wanted: str | None) -> str:
    """The id that signs new signatures: ``wanted`` (``SIGNATURE_KEY_ID``) if given, else the last key listed."""
    if wanted:
        if wanted not in keys:
            raise ImproperlyConfigured(f"SIGNATURE_KEY_ID={wanted!r} is not one of the SIGNATURE_KEYS ids.")
        return wanted
    return next(reversed(keys)) if keys else ""
