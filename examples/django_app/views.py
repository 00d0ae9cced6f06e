"""The example's views: a counter, log-in and log-out with django.contrib.auth, and a
"your sessions" page that lists the user's sessions and ends them, one or all others."""

from __future__ import annotations

import datetime
from html import escape

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.views.decorators.http import require_POST

from sessionware.django import current_session, user_sessions


def _page(request: HttpRequest, body: str) -> HttpResponse:
    flash = request.session.pop("flash", None)
    notice = "" if flash is None else f'<p class="flash" id="flash">{escape(flash)}</p>'
    return HttpResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>sessionware on Django</title></head><body><h1>sessionware on Django</h1>"
        f"{notice}{body}</body></html>"
    )


def _form(request: HttpRequest, action: str, button: str, fields: str = "") -> str:
    token = f'<input type="hidden" name="csrfmiddlewaretoken" value="{get_token(request)}">'
    return f'<form method="post" action="{action}">{token}{fields}<button>{button}</button></form>'


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        who = (
            f'<p>Logged in as <b id="user">{escape(request.user.get_username())}</b>. '
            '<a href="/sessions">Your sessions</a></p>' + _form(request, "/logout", "Log out")
        )
    else:
        fields = (
            '<input name="username" placeholder="user name" autocomplete="username">'
            '<input name="password" type="password" placeholder="password" autocomplete="current-password">'
        )
        who = _form(request, "/login", "Log in", fields)
    counter = int(request.session.get("counter", 0))
    return _page(
        request, f'{who}<p>Counter: <b id="counter">{counter}</b></p>' + _form(request, "/counter", "Count")
    )


@require_POST
def counter(request: HttpRequest) -> HttpResponse:
    request.session["counter"] = int(request.session.get("counter", 0)) + 1
    return HttpResponseRedirect("/")


@require_POST
def log_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.POST.get("username"), password=request.POST.get("password"))
    if user is None:
        request.session["flash"] = "Wrong user name or password."
    else:
        login(request, user)  # a new session key; sessionware files the session under the user
        request.session["flash"] = f"Welcome, {user.get_username()}."
    return HttpResponseRedirect("/")


@require_POST
def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)  # the session is deleted: no copy of its cookie works again
    return HttpResponseRedirect("/")


def _user_id(request: HttpRequest) -> int:
    """The logged-in user's ID (the views that call it require a log-in)."""
    assert request.user.pk is not None
    return int(request.user.pk)


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    rows = []
    for info in user_sessions(request).list(_user_id(request), current=current_session(request).sessionware):
        button = (
            "this device"
            if info.current
            else _form(
                request,
                "/sessions/revoke",
                "End",
                f'<input type="hidden" name="handle" value="{info.handle}">',
            )
        )
        rows.append(
            f'<tr class="session" data-handle="{info.handle}"><td>{escape(info.user_agent or "?")}</td>'
            f"<td>{escape(info.ip or '?')}</td><td>{_when(info.last_active)}</td>"
            f"<td>{_when(info.expires_at)}</td><td>{button}</td></tr>"
        )
    table = (
        "<table><tr><th>Browser</th><th>Address</th><th>Last active</th><th>Ends</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return _page(
        request,
        f'<h2>Your sessions</h2><p id="count">{len(rows)}</p>{table}'
        + _form(request, "/sessions/revoke-others", "Log out everywhere else")
        + '<p><a href="/">Home</a></p>',
    )


@login_required
@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    ended = user_sessions(request).revoke(_user_id(request), request.POST.get("handle", ""))
    request.session["flash"] = "Session ended." if ended else "No such session."
    return HttpResponseRedirect("/sessions")


@login_required
@require_POST
def revoke_others(request: HttpRequest) -> HttpResponse:
    # This session stays (under a new key); every other one of the user's ends.
    ended = user_sessions(request).revoke_all(_user_id(request), keep=current_session(request).sessionware)
    request.session["flash"] = f"Ended {ended} other session(s)."
    return HttpResponseRedirect("/sessions")
