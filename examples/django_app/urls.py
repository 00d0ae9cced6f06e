"""The example's routes."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home),
    path("counter", views.counter),
    path("login", views.log_in),
    path("logout", views.log_out),
    path("sessions", views.sessions),
    path("sessions/revoke", views.revoke),
    path("sessions/revoke-others", views.revoke_others),
]
