"""The CTCAE term table (the AE page's autocomplete searches it)."""

from django.contrib import admin

from core.admin import AuditedAdmin
from safety.models import CtcaeTerm


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(AuditedAdmin):
    list_display = ("term", "soc", "meddra_code")
    list_filter = ("soc",)
    search_fields = ("term", "soc", "meddra_code")  # the AE page's autocomplete searches these
    ordering = ("soc", "term")
