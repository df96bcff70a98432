from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.admin_login import AdminLoginForm, two_factor_setup, two_factor_verify
from core.views import healthz

admin.site.site_header = "Dose-escalation cohort manager"
admin.site.site_title = "Cohort manager"
admin.site.index_title = "Trial administration"
admin.site.login_form = AdminLoginForm  # asks for the authenticator code (core.two_factor)
admin.site.login_template = "core/admin_login.html"

urlpatterns = [
    path("admin/2fa/setup/", two_factor_setup, name="two-factor-setup"),
    path("admin/2fa/verify/", two_factor_verify, name="two-factor-verify"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    path("dashboard/", include("dashboard.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="dashboard/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script as a file (`?script`), so the page has no inline script and needs no
    # nonce; Swagger UI's own files come from drf-spectacular-sidecar (static, this origin): no CDN, no exception
    # to the CSP. (The non-split SpectacularSwaggerView inlines that script, which script-src 'self' refuses.)
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz, name="healthz"),
]

# Under /api/ these answer the JSON error contract; elsewhere Django's own pages (api.handlers).
handler400 = "api.handlers.bad_request"
handler403 = "api.handlers.permission_denied"
handler404 = "api.handlers.page_not_found"
handler500 = "api.handlers.server_error"
