"""The signature HMAC keys come from the environment or var/signature_keys, never from the database."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import current_signature_key_id, parse_signature_keys

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"k1:{SECRET}", {"k1": SECRET}),
        (f"old-2025:{SECRET}a,new.2026_b:{SECRET}b", {"old-2025": SECRET + "a", "new.2026_b": SECRET + "b"}),
        (f"# rotated 2026-12\n\nk1:{SECRET}\n  k2 : {SECRET}x  \n", {"k1": SECRET, "k2": SECRET + "x"}),
        ("", {}),
    ],
)
def test_signature_keys_are_read_as_id_secret_pairs_in_their_order(text, expected):
    keys = parse_signature_keys(text, source="SIGNATURE_KEYS")
    assert keys == expected and list(keys) == list(expected)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (SECRET, "is not 'key-id:secret'"),
        (f":{SECRET}", "is not 'key-id:secret'"),
        (f"bad id:{SECRET}", "is not 'key-id:secret'"),
        (f"{'k' * 33}:{SECRET}", "is not 'key-id:secret'"),
        (f"k1:{SECRET[:-1]}", "shorter than 32"),  # 31 characters: one short
        (f"k1:{SECRET},k1:{SECRET}", "listed twice"),
    ],
)
def test_a_malformed_signature_key_is_refused_with_what_is_wrong(text, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        parse_signature_keys(text, source="SIGNATURE_KEYS")


def test_the_key_that_signs_is_signature_key_id_or_else_the_last_listed():
    keys = {"old": SECRET, "new": SECRET}
    assert current_signature_key_id(keys, None) == "new"
    assert current_signature_key_id(keys, "old") == "old"
    assert current_signature_key_id({}, None) == ""
    with pytest.raises(ImproperlyConfigured, match="SIGNATURE_KEY_ID='gone' is not one of"):
        current_signature_key_id(keys, "gone")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    drop = {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT", "SIGNATURE_KEYS", "SIGNATURE_KEY_ID"}
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "SECRET_KEY": "k" * 60, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_key_file_under_var_is_read_and_the_environment_overrides_it(tmp_path):
    (tmp_path / "signature_keys").write_text(f"local-1:{SECRET}\nlocal-2:{SECRET}\n", encoding="utf-8")
    code = "import django; from django.conf import settings; django.setup(); print(settings.SIGNATURE_KEY_ID)"
    from_file = _run(["-c", code], {"VAR_DIR": str(tmp_path)})
    from_env = _run(["-c", code], {"VAR_DIR": str(tmp_path), "SIGNATURE_KEYS": f"prod-1:{SECRET}"})
    assert (from_file.stdout.strip(), from_env.stdout.strip()) == ("local-2", "prod-1"), from_file.stderr


def test_the_deploy_check_fails_without_a_signature_key(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        {"VAR_DIR": str(tmp_path), "ALLOWED_HOSTS": "trial.example"},
    )
    assert result.returncode != 0
    assert "safety.E001" in result.stdout + result.stderr
