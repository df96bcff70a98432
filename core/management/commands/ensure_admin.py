import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.actors import ENSURE_ADMIN, os_user, system_actor
from core.history import acting_as


class Command(BaseCommand):
    help = "Create an administrator login with a random password if no superuser exists (printed once)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator login already exists; its password is not shown again.")
            return
        password = secrets.token_urlsafe(12)
        with acting_as(system_actor(ENSURE_ADMIN), f"ensure_admin --username {username} (run by {os_user()})"):
            users.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(f"Created administrator login {username!r} with password: {password}")
        self.stdout.write("This password is shown only now: keep it or change it in the admin.")
