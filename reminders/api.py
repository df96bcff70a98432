"""GET /api/v1/reminders/: the reader's own reminders (her user or her roles). Sponsors have none: 403."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from api.permissions import PermsRequired
from api.schema import error_responses
from reminders import selectors
from reminders.models import Reminder


class ReminderSerializer(serializers.ModelSerializer):
    """A reminder addressed to you; times in UTC (the admin shows them in the site's zone)."""

    kind_display = serializers.CharField(source="get_kind_display", read_only=True)
    trial = serializers.CharField(source="trial.registry_id", read_only=True, allow_null=True)
    recipient = serializers.CharField(source="recipient_display", read_only=True)
    open = serializers.SerializerMethodField(help_text="Due and its subject still needs it")

    class Meta:
        model = Reminder
        fields = ("id", "kind", "kind_display", "subject", "subject_label", "trial", "safety", "recipient",
                  "channel", "event_at", "due_at", "state", "sent_at", "open")  # fmt: skip
        read_only_fields = fields

    def get_open(self, obj: Reminder) -> bool:
        return obj.resolved_at is None and obj.state != Reminder.State.PENDING


@extend_schema_view(
    list=extend_schema(responses={200: ReminderSerializer(many=True), **error_responses(401, 403)}),
    retrieve=extend_schema(responses={200: ReminderSerializer, **error_responses(401, 403, 404)}),
)
class ReminderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReminderSerializer
    permission_classes = [PermsRequired]
    required_perms = ("reminders.view_reminder",)

    def get_queryset(self):
        return selectors.reminders_for_user(self.request.user).order_by("-due_at", "-pk")
