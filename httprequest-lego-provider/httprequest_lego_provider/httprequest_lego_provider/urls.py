"""URL routes: the httpreq endpoints at the root, the admin API under /api/v1/."""

from __future__ import annotations

from api import admin as account_admin
from api.acmedns.admin_api import AcmeDnsAccountViewSet
from api.acmedns.views import HealthView, RegisterView, UpdateView
from api.admin_api import DomainUserPermissionViewSet, DomainViewSet, UserViewSet
from api.views import CleanupView, PresentView
from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import DefaultRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

router = DefaultRouter()
router.register("domains", DomainViewSet)
router.register("domain-user-permissions", DomainUserPermissionViewSet)
router.register("users", UserViewSet)
router.register("acmedns-accounts", AcmeDnsAccountViewSet)

urlpatterns = [
    # lego posts to <endpoint>/present and <endpoint>/cleanup, without a trailing slash.
    path("present", PresentView.as_view(), name="present"),
    path("present/", PresentView.as_view()),
    path("cleanup", CleanupView.as_view(), name="cleanup"),
    path("cleanup/", CleanupView.as_view()),
    # acme-dns's API (docs/acme-dns.md): clients post to <base>/update, without a slash.
    path("update", UpdateView.as_view(), name="acmedns-update"),
    path("register", RegisterView.as_view(), name="acmedns-register"),
    path("health", HealthView.as_view(), name="acmedns-health"),
    path("api/v1/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/v1/", include(router.urls)),
    path("admin/login/", account_admin.login, name="admin_login"),
    path("admin/password_change/", account_admin.password_change, name="admin_password_change"),
    path("admin/", admin.site.urls),
]
