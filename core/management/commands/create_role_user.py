import json
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.actors import CREATE_ROLE_USER, os_user, system_actor
from core.history import acting_as
from core.roles import ROLES, SAFETY_COMMITTEE, SPONSOR


class Command(BaseCommand):
    help = "Create a staff user with one role (group); prints the generated password once, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--token", action="store_true", help="also create an API token for the user")
        parser.add_argument("--chair", action="store_true", help="Safety committee only: this member chairs reviews")

    def handle(self, *args, username, role, first_name, last_name, email, token, chair, **options):
        if chair and role != SAFETY_COMMITTEE:
            raise CommandError("--chair is for members of the Safety committee.")
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists.")
        password = secrets.token_urlsafe(12)
        reason = f"create_role_user {username} --role {role}" + (" --chair" if chair else "")
        reason += f" (run by {os_user()})"
        with transaction.atomic(), acting_as(system_actor(CREATE_ROLE_USER), reason):
            user = users.objects.create_user(
                username=username,
                password=password,
                email=email,
                first_name=first_name,
                last_name=last_name,
                # Sponsors read through the API only: the admin shows direct identifiers.
                is_staff=role != SPONSOR,
            )
            user.groups.add(Group.objects.get(name=role))
            if chair:
                user.user_permissions.add(
                    Permission.objects.get(content_type__app_label="safety", codename="chair_review")
                )
            key = None
            if token:
                key = Token.objects.create(user=user).key
        self.stdout.write(
            json.dumps({"username": username, "role": role, "chair": chair, "password": password, "token": key})
        )
