"""Who sees which sites and trials: the one scoping helper (issue 12, item 8).

Access is granted, never assumed:

- ``SiteAssignment`` (site staff, investigators): the participants of that site, everything hanging off
  them, and the trial-level records (cohorts, reviews, summaries) of that site's trial.
- ``TrialAssignment`` (sponsors, and every token of the account): every participant of that trial.
- The permission ``trial.view_every_site`` (the Safety committee and Data manager roles; superusers):
  everything.
- Anyone else, including site staff and sponsors with no assignment: nothing (the safe default).

Reads go through ``scope_participants`` / ``scope_trials`` / ``scope_records`` (API and admin querysets,
the exports' subjects); who receives a reminder through ``users_who_see``; writes through
``require_participant_access`` / ``require_site_access`` / ``require_trial_access`` in every service that
writes a participant's records or a trial's. A scoped user's grants cost two queries (none for the unscoped),
kept on the user object for reads.
"""

# ruff: noqa: S608 - the assignments statement names tables from the models' meta; the user id is a parameter

from dataclasses import dataclass
from functools import cache

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from core.errors import ErrorCode, PermissionDenied, require_permission
from core.history import audit
from core.roles import INVESTIGATOR, SITE_STAFF
from trial.models import Site, SiteAssignment, Trial, TrialAssignment

EVERY_SITE = "trial.view_every_site"
SITE_ROLES = frozenset({SITE_STAFF, INVESTIGATOR})  # create_role_user asks these for --site
_CACHE = "_trial_access_scope"


@dataclass(frozen=True)
class Scope:
    everything: bool = False
    site_ids: frozenset[int] = frozenset()  # sites whose participants the user sees
    whole_trial_ids: frozenset[int] = frozenset()  # trials whose every participant the user sees
    trial_ids: frozenset[int] = frozenset()  # every trial the user sees something of

    @property
    def unscoped(self) -> bool:
        return self.everything

    def sees_site(self, site_id: int, trial_id: int) -> bool:
        return self.everything or site_id in self.site_ids or trial_id in self.whole_trial_ids

    def sees_trial(self, trial_id: int) -> bool:
        return self.everything or trial_id in self.trial_ids

    def participants(self, prefix: str = "") -> Q:
        """The participants seen, as a filter (``prefix``: the lookup to the participant, with ``__``)."""
        if self.everything:
            return Q()
        return Q(**{f"{prefix}site_id__in": self.site_ids}) | Q(**{f"{prefix}trial_id__in": self.whole_trial_ids})


EVERYTHING = Scope(everything=True)
NOTHING = Scope()


def scope_of(user, *, fresh: bool = False) -> Scope:
    """What ``user`` may see. Reads keep it on the user object (a request's user lives for one request);
    the write checks ask for it ``fresh``, so an ended assignment stops a write at once."""
    cached = None if fresh else getattr(user, _CACHE, None)
    if cached is not None:
        return cached
    scope = _compute(user)
    if user is not None and getattr(user, "pk", None) is not None:
        setattr(user, _CACHE, scope)
    return scope


def forget_scope(user) -> None:
    """After an assignment changes, the next read computes the user's scope again."""
    if hasattr(user, _CACHE):
        delattr(user, _CACHE)


@cache
def assignments_sql() -> str:
    """A scoped user's active assignments as plain SQL, the one place the rule is written: rows of (the site's
    trial, the site) for site assignments and (the trial, NULL) for whole-trial ones, of the user
    ``%(scope_user)s``. ``scope_of`` reads them; ``trial_scope_sql`` filters by them."""
    q = connection.ops.quote_name
    return (
        f"SELECT s.{q('trial_id')} AS {q('trial_id')}, a.{q('site_id')} AS {q('site_id')} "
        f"FROM {q(SiteAssignment._meta.db_table)} a JOIN {q(Site._meta.db_table)} s ON s.{q('id')} = a.{q('site_id')} "
        f"WHERE a.{q('user_id')} = %(scope_user)s AND a.{q('active')} "
        f"UNION ALL SELECT t.{q('trial_id')}, NULL FROM {q(TrialAssignment._meta.db_table)} t "
        f"WHERE t.{q('user_id')} = %(scope_user)s AND t.{q('active')}"
    )


def _compute(user) -> Scope:
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.has_perm(EVERY_SITE):  # superusers too; the permission cache is usually warm already
        return EVERYTHING
    # One query: the site assignments (the site's trial, the site) and the whole-trial ones (the trial, no
    # site), written once as SQL: compiling the ORM's UNION cost more than running it, on every API request.
    with connection.cursor() as cursor:
        cursor.execute(assignments_sql(), {"scope_user": user.pk})
        rows = cursor.fetchall()
    return Scope(
        site_ids=frozenset(site for _, site in rows if site is not None),
        whole_trial_ids=frozenset(trial for trial, site in rows if site is None),
        trial_ids=frozenset(trial for trial, _ in rows),
    )


def users_who_see(users: QuerySet, *, site_id: int | None = None, trial_id: int | None = None) -> QuerySet:
    """The other side of ``scope_of``: those of ``users`` who see site ``site_id`` (of trial ``trial_id``), or,
    with no site, something of trial ``trial_id`` (a site of it or the whole of it). Unscoped users (the
    permission through a role or their own; superusers) see everything; an ended assignment counts for nothing.
    One query whatever the number of users (the assignments and permissions are subqueries). Who receives a
    reminder addressed to a role at a site (reminders.services)."""
    if site_id is None and trial_id is None:
        raise ValueError("give site_id or trial_id")
    model = users.model
    app_label, codename = EVERY_SITE.split(".")
    by_role = model.groups.through.objects.filter(
        group__permissions__codename=codename, group__permissions__content_type__app_label=app_label
    )
    own = model.user_permissions.through.objects.filter(
        permission__codename=codename, permission__content_type__app_label=app_label
    )
    staff = SiteAssignment.objects.filter(active=True)
    staff = staff.filter(site_id=site_id) if site_id is not None else staff.filter(site__trial_id=trial_id)
    sees = (
        Q(is_superuser=True)
        | Q(pk__in=by_role.values("user_id"))
        | Q(pk__in=own.values("user_id"))
        | Q(pk__in=staff.values("user_id"))
    )
    if trial_id is not None:
        sees |= Q(pk__in=TrialAssignment.objects.filter(trial_id=trial_id, active=True).values("user_id"))
    return users.filter(sees)


def _prefix(path: str) -> str:
    return f"{path}__" if path else ""


def scope_participants(queryset: QuerySet, user, *, participant: str = "") -> QuerySet:
    """``queryset`` narrowed to the rows of participants ``user`` may see.

    ``participant`` is the lookup path from the queryset's model to the participant ("" for
    participants themselves, "participant", "adverse_event__participant", …).
    """
    scope = scope_of(user)
    return queryset if scope.everything else queryset.filter(scope.participants(_prefix(participant)))


def scope_trials(queryset: QuerySet, user, *, trial: str = "trial") -> QuerySet:
    """``queryset`` narrowed to the trials ``user`` may see (``trial="pk"`` for trials themselves)."""
    scope = scope_of(user)
    if scope.everything:
        return queryset
    return queryset.filter(**{"pk__in" if trial == "pk" else f"{trial}_id__in": scope.trial_ids})


def trial_scope_sql(user, column: str) -> tuple[str, dict]:
    """``scope_trials`` for a plain SQL statement: a condition on ``column`` (a trial id; a name in the
    statement, never a value) that holds for the trials ``user`` sees, and its parameters. The grants are
    subqueries of the statement, not a query of their own (the trial summary reads a trial in one query)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return "1 = 0", {}
    if user.has_perm(EVERY_SITE):
        return "1 = 1", {}
    seen = f"SELECT seen.{connection.ops.quote_name('trial_id')} FROM ({assignments_sql()}) seen"
    return f"{column} IN ({seen})", {"scope_user": user.pk}


def scope_sites(queryset: QuerySet, user) -> QuerySet:
    """Sites ``user`` may register participants at (the choices of a site field)."""
    scope = scope_of(user)
    if scope.everything:
        return queryset
    return queryset.filter(Q(pk__in=scope.site_ids) | Q(trial_id__in=scope.whole_trial_ids))


def require_site_access(user, *, site_id: int, trial_id: int) -> None:
    """Services: refuse (403 ``not_assigned``) a write on a participant of a site the user does not work at."""
    if not scope_of(user, fresh=True).sees_site(site_id, trial_id):
        raise PermissionDenied(
            ErrorCode.NOT_ASSIGNED, "You are not assigned to this participant's site; nothing was saved."
        )


def require_participant_access(user, record, *, via: str = "") -> None:
    """Services: refuse a write on ``record``, a participant or a record that hangs off one through ``via``
    (``"participant"``, ``"adverse_event.participant"``), unless the user works at her site.

    An unscoped user (committee, data manager, superuser) is let through without reading the record."""
    scope = scope_of(user, fresh=True)
    if scope.unscoped:
        return
    participant = record
    for name in filter(None, via.split(".")):
        participant = getattr(participant, name)
    if not scope.sees_site(participant.site_id, participant.trial_id):
        raise PermissionDenied(
            ErrorCode.NOT_ASSIGNED, "You are not assigned to this participant's site; nothing was saved."
        )


def require_trial_access(user, *, trial_id: int) -> None:
    if not scope_of(user, fresh=True).sees_trial(trial_id):
        raise PermissionDenied(ErrorCode.NOT_ASSIGNED, "You are not assigned to this trial; nothing was saved.")


# --- the assignments' own writes -----------------------------------------------------------------------


def site_assignment_save(*, user, site: Site, active: bool = True, by, reason: str) -> SiteAssignment:
    """Assign ``user`` to ``site`` (or end it, ``active=False``), audited with who and why."""
    require_permission(by, "trial.change_siteassignment", "assign staff to sites")
    with transaction.atomic():
        assignment = SiteAssignment.objects.select_for_update().filter(user=user, site=site).first()
        assignment = assignment or SiteAssignment(user=user, site=site)
        assignment.active = active
        audit(assignment, by=by, reason=reason).save()
    forget_scope(user)
    return assignment


def trial_assignment_save(*, user, trial: Trial, active: bool = True, by, reason: str) -> TrialAssignment:
    """Let a sponsor's account read ``trial`` (or stop it, ``active=False``), audited with who and why."""
    require_permission(by, "trial.change_trialassignment", "assign sponsors to trials")
    with transaction.atomic():
        assignment = TrialAssignment.objects.select_for_update().filter(user=user, trial=trial).first()
        assignment = assignment or TrialAssignment(user=user, trial=trial)
        assignment.active = active
        audit(assignment, by=by, reason=reason).save()
    forget_scope(user)
    return assignment


# --- any model: the path to its participant or trial, found from its foreign keys (admin querysets) -----

PARTICIPANT_MODEL = "cohorts.Participant"
_CLINICAL_APPS = frozenset({"cohorts", "safety"})


def participant_path(model, depth: int = 2) -> str | None:
    """The lookup from ``model`` to the participant its rows belong to ("" for participants), or None.

    Found from the foreign keys (``participant``, then ``infusion__participant``, ``adverse_event__participant``,
    ``screening__participant``…), so a new clinical model is scoped without anyone remembering to."""
    if model._meta.label == PARTICIPANT_MODEL:
        return ""
    links = [f for f in model._meta.get_fields() if (f.many_to_one or f.one_to_one) and f.concrete and f.related_model]
    links.sort(key=lambda f: f.name != "participant")
    for field in links:
        if field.related_model._meta.label == PARTICIPANT_MODEL:
            return field.name
    for field in links:
        if depth > 1 and field.related_model._meta.app_label in _CLINICAL_APPS:
            below = participant_path(field.related_model, depth - 1)
            if below:
                return f"{field.name}__{below}"
    return None


def scope_records(queryset: QuerySet, user) -> QuerySet:
    """Any queryset narrowed to what ``user`` may see: by participant where its rows hang off one, else by
    trial (``trial`` foreign key, or trials themselves), sites by assignment; other models are not scoped."""
    model = queryset.model
    path = participant_path(model)
    if path is not None:
        return scope_participants(queryset, user, participant=path)
    if model is Trial:
        return scope_trials(queryset, user, trial="pk")
    if model is Site:
        return scope_sites(queryset, user)
    if any(f.name == "trial" and f.many_to_one for f in model._meta.get_fields()):
        return scope_trials(queryset, user)
    return queryset


def assignments_for_new_user(*, user, sites=(), trials=(), reason: str) -> None:
    """The assignments ``create_role_user`` gives a new account (the command line is the actor), audited."""
    with transaction.atomic():
        for site in sites:
            audit(SiteAssignment(user=user, site=site), reason=reason).save()
        for trial in trials:
            audit(TrialAssignment(user=user, trial=trial), reason=reason).save()
    forget_scope(user)
