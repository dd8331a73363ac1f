"""URL routes: the httpreq endpoints at the root, the admin API under /api/v1/."""

from __future__ import annotations

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

urlpatterns = [
    # lego posts to <endpoint>/present and <endpoint>/cleanup, without a trailing slash.
    path("present", PresentView.as_view(), name="present"),
    path("present/", PresentView.as_view()),
    path("cleanup", CleanupView.as_view(), name="cleanup"),
    path("cleanup/", CleanupView.as_view()),
    path("api/v1/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/v1/", include(router.urls)),
    path("admin/", admin.site.urls),
]
