"""The application's settings plus one bare endpoint to compare with (``bench/summary_scale.py`` only)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# No collectstatic for a benchmark: plain static storage (the pages' HTML is what is measured).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
