"""The dashboard: login required, one page per trial, everything read from ``dashboard.selectors``.

Every role that may view the protocol (``trial.view_trial``) may open it; sponsors too, since the page
carries no direct identifier and no staff username. Sponsors have no admin access, so the dashboard
logs in through its own page (Django's ``LoginView``), not the admin's staff-only login.
"""

import zoneinfo

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, render

from dashboard import selectors, svg
from exports import permissions as export_permissions
from exports.permissions import role_label
from trial.access import scope_trials
from trial.models import Trial

HALF = 600  # the plots drawn side by side at 1280 px


@login_required
@permission_required("trial.view_trial", raise_exception=True)
def index(request):
    trials = scope_trials(Trial.objects.all(), request.user, trial="pk")
    trials = trials.annotate(cohort_count=Count("cohorts")).order_by("registry_id")
    return render(request, "dashboard/index.html", {"trials": trials, "role": role_label(request.user)})


@login_required
@permission_required("trial.view_trial", raise_exception=True)
def trial_page(request, registry_id: str):
    trial = get_object_or_404(scope_trials(Trial.objects.all(), request.user, trial="pk"), registry_id=registry_id)
    user = request.user
    data = selectors.trial_dashboard(
        trial,
        with_reviews=user.has_perms(["safety.view_safetyreview", "safety.view_signoff"]),
        with_clocks=user.has_perm("safety.view_reportingclock"),
        user=user,  # site staff and investigators: the plots show their sites' participants only
    )
    zone = zoneinfo.ZoneInfo(data.zone)
    plots = {
        "swimmer": svg.swimmer(data.lanes, today=data.as_of),
        "grades": svg.grade_bars(data.grades_by_dose, width=HALF),
        "enrollment": svg.enrollment_steps(data.enrollment, today=data.as_of, width=HALF),
        "reviews": svg.review_timeline(data.reviews, zone=zone, today=data.as_of) if data.reviews else None,
        "clocks": svg.clock_bars(data.clocks) if data.clocks else None,
    }
    return render(request, "dashboard/trial.html", {
        "data": data, "trial": trial, "plots": plots, "role": role_label(user),
        "exports": export_permissions.available_exports(user, trial),
        "grades": selectors.GRADES,
        "enrollment_rows": [(seq, day, count) for seq, points in data.enrollment.items() for day, count in points],
    })  # fmt: skip
