import json
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.actors import CREATE_ROLE_USER, os_user, system_actor
from core.history import acting_as
from core.roles import ROLES, SAFETY_COMMITTEE, SPONSOR
from core.tokens import token_issue
from trial.access import SITE_ROLES, assignments_for_new_user
from trial.models import Site, Trial


class Command(BaseCommand):
    help = "Create a staff user with one role (group); prints the generated password once, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--token", action="store_true", help="also issue an API token (printed once; only its digest is stored)"
        )
        parser.add_argument("--chair", action="store_true", help="Safety committee only: this member chairs reviews")
        parser.add_argument(
            "--site",
            action="append",
            default=[],
            metavar="NAME",
            help="Site staff and investigators (required, repeatable): the site, by name, whose participants they see",
        )
        parser.add_argument(
            "--trial",
            action="append",
            default=[],
            metavar="REGISTRY_ID",
            help="Sponsors (required, repeatable): a trial the account and its tokens read; with --site, narrows it",
        )

    def handle(self, *args, username, role, first_name, last_name, email, token, chair, site, trial, **options):
        if chair and role != SAFETY_COMMITTEE:
            raise CommandError("--chair is for members of the Safety committee.")
        sites, trials = self._access(role, site, trial)
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
            assignments_for_new_user(user=user, sites=sites, trials=trials, reason=f"create_role_user --role {role!r}")
            key = None
            if token:
                key = token_issue(user=user, reason="create_role_user --token")[1]
        self.stdout.write(
            json.dumps(
                {
                    "username": username,
                    "role": role,
                    "chair": chair,
                    "sites": [f"{s.trial.registry_id} {s.name}" for s in sites],
                    "trials": [t.registry_id for t in trials],
                    "password": password,
                    "token": key,
                }
            )
        )

    def _access(self, role: str, site_names: list[str], registry_ids: list[str]) -> tuple[list, list]:
        """The sites (site roles) or trials (sponsors) the new account is assigned to (trial.access)."""
        trials = []
        for registry_id in registry_ids:
            found = Trial.objects.filter(registry_id=registry_id).first()
            if found is None:
                raise CommandError(f"No trial {registry_id!r}.")
            trials.append(found)
        if role in SITE_ROLES:
            if not site_names:
                raise CommandError(
                    f"{role} see only their own sites' participants: give --site NAME ({self._names()})."
                )
            return [self._site(name, trials) for name in site_names], []
        if site_names:
            raise CommandError("--site is for site staff and investigators.")
        if role == SPONSOR and not trials:
            raise CommandError("A sponsor reads only the trials assigned to it: give --trial REGISTRY_ID.")
        return [], trials if role == SPONSOR else []

    @staticmethod
    def _names() -> str:
        return (
            ", ".join(f"{s.name!r} ({s.trial.registry_id})" for s in Site.objects.select_related("trial")) or "none yet"
        )

    def _site(self, name: str, trials: list) -> Site:
        found = Site.objects.select_related("trial").filter(name=name)
        if trials:
            found = found.filter(trial__in=trials)
        found = list(found[:2])
        if len(found) != 1:
            why = "No site" if not found else "Several sites (give --trial to choose)"
            raise CommandError(f"{why} named {name!r}: {self._names()}.")
        return found[0]
