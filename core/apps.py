from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "System"

    def ready(self):
        from core.append_only import install_append_only_triggers

        post_migrate.connect(install_append_only_triggers, sender=self, dispatch_uid="core_append_only")
