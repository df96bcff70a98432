"""A changelist paginator for the large tables (adverse events, participants, clocks, infusions).

Two costs grow with a table's size on the admin's changelist, and this paginator removes both:

* **the sort over the full join**: the admin joins every ``list_select_related`` table and then sorts and
  cuts the page. Here the page's primary keys are sorted and cut on the model's own table in a subquery (the
  joins a filter needs stay, the display joins go, so PostgreSQL walks the sort's index), and only those
  rows are joined and sorted again: one query, as a single-page changelist takes;
* **the exact count of an unfiltered changelist**: ``COUNT(*)`` scans the table. On PostgreSQL the
  planner's estimate (``pg_class.reltuples``, kept by ``ANALYZE`` and autovacuum) is used instead once it
  is above ``ESTIMATE_ABOVE`` rows; a filtered or searched changelist, and any smaller table, counts exactly.
"""

from django.core.paginator import Page, Paginator
from django.db import connections
from django.utils.functional import cached_property

ESTIMATE_ABOVE = 10_000


def estimated_rows(model, using: str = "default") -> int | None:
    """The planner's row estimate of ``model``'s table on PostgreSQL (None elsewhere or before ANALYZE)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None


class LargeTablePaginator(Paginator):
    """Pages by primary key first, and estimates the count of an unfiltered large table (see the module)."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = estimated_rows(queryset.model, queryset.db)
            if estimate is not None and estimate > ESTIMATE_ABOVE:
                return estimate
        return queryset.count()

    def page(self, number) -> Page:
        """The page's rows: ``pk IN (the page's keys, sorted and cut on the model's table)``, in one query."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = self.object_list.values("pk")[bottom:top]
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)
