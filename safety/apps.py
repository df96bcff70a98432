from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self):
        # Django's way: the app registry is ready here, not when apps.py is imported.
        from cohorts.ports import provide_safety_reader
        from safety import checks  # noqa: F401 - registers the system checks
        from safety.cohort_reader import SafetyReaderForCohorts

        provide_safety_reader(SafetyReaderForCohorts())
