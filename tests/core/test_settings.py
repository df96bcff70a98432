"""Settings come from the environment; a production start without a secret key is refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT"}
    }
    code = f"import django; from django.conf import settings; django.setup(); print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_with_debug_off_and_no_secret_key_is_refused():
    result = _settings_in_subprocess({"DEBUG": "false", "VAR_DIR": "/tmp/cm-settings-test"}, "settings.DEBUG")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_database_and_redis_urls_switch_to_postgresql_and_redis():
    result = _settings_in_subprocess(
        {
            "DEBUG": "false",
            "SECRET_KEY": "x" * 50,
            "DATABASE_URL": "postgres://alice@db.example:5433/trialdb",
            "REDIS_URL": "redis://cache.example:6380/2",
        },
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'],"
        " settings.DATABASES['default']['PORT'], settings.CELERY_BROKER_URL, settings.SESSION_COOKIE_SECURE",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("django.db.backends.postgresql trialdb 5433 redis://cache.example:6380/2 True")


def test_without_urls_the_embedded_defaults_use_sqlite_and_a_filesystem_broker_under_var(tmp_path):
    result = _settings_in_subprocess(
        {"DEBUG": "true", "VAR_DIR": str(tmp_path)},
        "settings.DATABASES['default']['NAME'], settings.CELERY_BROKER_URL",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "db.sqlite3"), "filesystem://"]
    assert (tmp_path / "celery" / "queue").is_dir()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("false", False), ("", False)],
)
def test_boolean_variables_accept_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG") is expected


def test_a_boolean_variable_with_another_value_is_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"):
        env_bool("SOME_FLAG")


def test_integer_and_list_variables_are_parsed(monkeypatch):
    monkeypatch.setenv("SOME_INT", "42")
    monkeypatch.setenv("SOME_LIST", "a.example, b.example,")
    assert env_int("SOME_INT", 1) == 42
    assert env_list("SOME_LIST", []) == ["a.example", "b.example"]
    monkeypatch.setenv("SOME_INT", "forty")
    with pytest.raises(ImproperlyConfigured, match="SOME_INT='forty' is not an integer"):
        env_int("SOME_INT", 1)


def test_deploy_check_is_clean_with_debug_off(tmp_path):
    base = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", "REDIS_URL", "SECURE_SSL_REDIRECT"}
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **base,
            "DEBUG": "false",
            "SECRET_KEY": "k" * 60 + "!@#$%",
            "ALLOWED_HOSTS": "trial.example",
            "VAR_DIR": str(tmp_path),
            "SIGNATURE_KEYS": "prod-2026:" + "s" * 48,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("prepare", "threshold"), [(None, "0"), ("false", "None"), ("true", "0")])
def test_postgresql_connections_persist_and_prepare_the_hot_statements_unless_told_not_to(prepare, threshold):
    env = {"DEBUG": "false", "SECRET_KEY": "x" * 50, "DATABASE_URL": "postgres://alice@db.example:5433/trialdb"}
    if prepare is not None:
        env["DB_PREPARE"] = prepare
    result = _settings_in_subprocess(
        env,
        "settings.DATABASES['default']['CONN_MAX_AGE'], settings.DATABASES['default']['CONN_HEALTH_CHECKS'],"
        " settings.DATABASES['default']['OPTIONS']['prepare_threshold']",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60", "True", threshold]
