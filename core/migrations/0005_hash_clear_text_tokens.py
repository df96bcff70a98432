"""DRF's clear-text tokens (``authtoken_token``, from before knox) become hashed, expiring knox tokens, and their
table is dropped: a token that worked before keeps working, until its role's lifetime from this migration,
and no database copy reveals it any more. Data managers get the token permissions (``sync_roles``)."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

from core.roles import SPONSOR, sync_roles

OLD_TABLE = "authtoken_token"


def hash_clear_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return  # a database created after the change: nothing to move
    user_model = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    token_model = apps.get_model("knox", "AuthToken")
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {OLD_TABLE}")  # noqa: S608 (a constant table name)
        rows = cursor.fetchall()
    for key, user_id in rows:
        user = user_model.objects.get(pk=user_id)
        sponsor_only = (
            list(user.groups.values_list("name", flat=True)) == [SPONSOR] and not user.is_staff and not user.is_superuser
        )
        days = settings.API_TOKEN_TTL_SPONSOR_DAYS if sponsor_only else settings.API_TOKEN_TTL_STAFF_DAYS
        token_model(
            digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user=user, expiry=now + timedelta(days=days)
        ).save(force_insert=True)
    schema_editor.execute(f"DROP TABLE {OLD_TABLE}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("core", "0004_api_tokens")]

    operations = [
        migrations.RunPython(hash_clear_text_tokens, migrations.RunPython.noop),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
