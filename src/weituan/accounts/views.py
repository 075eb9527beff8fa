"""Browser pages of accounts: sign up, log in and out, password reset, profile settings, merchants."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from weituan.accounts import invites, queries, services
from weituan.accounts.forms import (
    LoginForm,
    MerchantApplicationForm,
    MerchantDecisionForm,
    MerchantRevokeForm,
    ProfileForm,
    SignupForm,
)
from weituan.accounts.models import User
from weituan.accounts.profile_fields import FIELDS_PARAMETER, profile_fields_of
from weituan.accounts.tasks import password_reset_mail_task
from weituan.accounts.tokens import access_tokens_revoke_of_user
from weituan.core.errors import PermissionDenied, ServiceError
from weituan.core.images import MAX_PIXELS
from weituan.core.ratelimit import rate_limit_hit
from weituan.core.tasks import enqueue_on_commit

# Service errors name the field they are about; the form shows them next to it.
_FORM_FIELD_OF = {"note": "bio", "password": "password1", "source[privacy]": "default_privacy"}

# Services speak English; the refusals a person meets on these pages get a translated sentence, by
# (field, code), or ("", code) for any field. Anything else shows the service's own message.
_FORM_ERRORS: dict[tuple[str, str], Any] = {
    ("username", "invalid"): gettext_lazy(
        "A username is 2–30 letters, digits, underscores or Chinese characters, with no spaces."
    ),
    ("username", "username_reserved"): gettext_lazy("This username is reserved. Please choose another."),
    ("username", "username_taken"): gettext_lazy("This username is already taken. Please choose another."),
    ("email", "invalid"): gettext_lazy("Enter a valid e-mail address."),
    ("email", "email_taken"): gettext_lazy(
        "An account with this e-mail address already exists. Log in, or reset its password."
    ),
    ("", "invalid_image"): gettext_lazy("That file is not a JPEG, PNG, GIF or WebP image we can read."),
    ("", "image_too_large"): gettext_lazy(
        "That image is too large: a picture may be at most %(size)s and %(pixels)s million pixels."
    ),
    ("", "already_merchant"): gettext_lazy("This account is already a verified merchant."),
    ("", "application_pending"): gettext_lazy("An application is already waiting for review."),
    ("", "not_verified_merchant"): gettext_lazy("This account is not a verified merchant."),
    ("", "rate_limited"): gettext_lazy("Too many attempts. Please wait a moment and try again."),
    (FIELDS_PARAMETER, "profile_field_name_blank"): gettext_lazy(
        "A profile field with content needs a label too."
    ),
    (FIELDS_PARAMETER, "profile_field_too_long"): gettext_lazy(
        "A profile field's label and content are limited to 255 characters each."
    ),
    (FIELDS_PARAMETER, "too_many_profile_fields"): gettext_lazy("A profile has at most four fields."),
    ("source[privacy]", "invalid_privacy"): gettext_lazy("Choose who sees your new posts from the list."),
}


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def _error_text(exc: ServiceError) -> str:
    field = str(exc.details.get("field") or "")
    text = _FORM_ERRORS.get((field, exc.code)) or _FORM_ERRORS.get(("", exc.code))
    if text is None:
        return exc.message
    return str(text) % _picture_limits() if exc.code == "image_too_large" else str(text)


def _picture_limits() -> dict[str, str]:
    return {"size": filesizeformat(settings.MEDIA_MAX_BYTES), "pixels": str(MAX_PIXELS // 1_000_000)}


def _attach_error(form: Any, exc: ServiceError) -> None:
    field = exc.details.get("field")
    name = _FORM_FIELD_OF.get(str(field), str(field)) if field else None
    form.add_error(name if name in form.fields else None, _error_text(exc))


def _safe_next(request: HttpRequest, fallback: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return fallback


def _signup_acceptable(request: HttpRequest, form: SignupForm) -> bool:
    """Whether the sign-up form may go to the service, with every problem shown beside its field at once:
    a name already taken is said together with passwords that differ, not on the next try."""
    acceptable = form.is_valid()
    for problem in services.user_register_problems(
        username=request.POST.get("username", ""),
        email=request.POST.get("email", ""),
        password=request.POST.get("password1", ""),
        display_name=request.POST.get("display_name", ""),
    ):
        field = str(problem.details.get("field"))
        if _FORM_FIELD_OF.get(field, field) not in form.errors:
            _attach_error(form, problem)
        acceptable = False
    return acceptable


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST" and _signup_acceptable(request, form):
        try:
            rate_limit_hit(f"signup:{_client_address(request)}", limit=20, window_seconds=3600)
            user = services.user_register(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                display_name=form.cleaned_data["display_name"],
                locale=request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "",
            )
        except ServiceError as exc:
            _attach_error(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            invites.invitation_accept_from_session(request.session, invitee=user, new_account=True)
            messages.success(request, _("Welcome to Weituan, %(name)s!") % {"name": user.name_to_show})
            return redirect(_safe_next(request, reverse(settings.LOGIN_REDIRECT_URL)))
    status = 400 if request.method == "POST" else 200
    # Where the visitor was going (a team to join, a deal), kept through a refused form and the login link.
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    return render(request, "accounts/signup.html", {"form": form, "next": wanted}, status=status)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            rate_limit_hit(f"login:{_client_address(request)}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
        except ServiceError as exc:
            form = self.get_form()
            form.add_error(None, _error_text(exc))
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # An account that already existed, logging in after following a friend's invite link.
        invites.invitation_accept_from_session(
            self.request.session, invitee=form.get_user(), new_account=False
        )
        return response


class LogoutView(auth_views.LogoutView):
    """POST only (Django's rule): a link or an image tag cannot log anyone out."""


class PasswordResetView(auth_views.PasswordResetView):
    """Asking for a reset answers the same, and as fast, whether or not an account has the address:
    the mail is looked up, written and sent by a background task, never inside the request."""

    template_name = "accounts/password_reset_form.html"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form: Any) -> HttpResponse:
        # One address gets at most a few e-mails an hour, whoever asks for them.
        address = form.cleaned_data["email"].strip().lower()
        try:
            rate_limit_hit(f"password-reset:{address}", limit=5, window_seconds=3600)
            rate_limit_hit(
                f"password-reset-ip:{_client_address(self.request)}", limit=20, window_seconds=3600
            )
        except ServiceError:
            return HttpResponseRedirect(self.get_success_url())
        # The request's language is the mail's only for an account that chose none in its profile.
        enqueue_on_commit(password_reset_mail_task, form.cleaned_data["email"], translation.get_language())
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        # A reset is for an account whose password someone else may know: the API tokens made with it
        # (the password grant, or an app approved while logged in) stop working with it, as sessions do.
        with transaction.atomic():
            response = super().form_valid(form)
            access_tokens_revoke_of_user(user_id=form.user.pk)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, _("Your password was changed."))
        return response


@login_required
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    initial = {
        "display_name": user.display_name,
        "bio": user.bio,
        "locale": user.locale,
        "quote_policy": user.quote_policy,
        "default_privacy": user.default_privacy,
        **ProfileForm.pair_initial(profile_fields_of(user)),
    }
    form = ProfileForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rate_limit_hit(f"profile:{user.pk}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
            services.user_profile_update(
                user=user,
                display_name=form.cleaned_data["display_name"],
                bio=form.cleaned_data["bio"],
                avatar=form.cleaned_data.get("avatar"),
                locale=form.cleaned_data["locale"],
                quote_policy=form.cleaned_data["quote_policy"] or None,
                default_privacy=form.cleaned_data["default_privacy"] or None,
                profile_fields=form.pairs(),
            )
        except ServiceError as exc:
            user.refresh_from_db()
            _attach_error(form, exc)
        else:
            messages.success(request, _("Your profile was saved."))
            return redirect("accounts:profile")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/profile_edit.html", {"form": form, "profile": user}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def merchant_apply(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = MerchantApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.merchant_apply(
                user=user,
                shop_name=form.cleaned_data["shop_name"],
                description=form.cleaned_data["description"],
            )
        except ServiceError as exc:
            _attach_error(form, exc)
        else:
            messages.success(request, _("Thank you. An operator will review your application."))
            return redirect("accounts:merchant_apply")
    context = {"form": form, "applications": queries.merchant_applications_of_user(user)[:5]}
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/merchant_apply.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def operator_merchants(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        pending = list(queries.merchant_applications_for_operator(user))
    except PermissionDenied:
        return render(request, "accounts/forbidden.html", status=403)
    context = {"applications": pending, "merchants": queries.verified_merchants()[:200]}
    return render(request, "accounts/operator_merchants.html", context)


@login_required
@require_POST
def operator_merchant_decide(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = MerchantDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The decision could not be read."))
        return redirect("accounts:operator_merchants")
    application_id = form.cleaned_data["application_id"]
    try:
        if form.cleaned_data["decision"] == "approve":
            application = services.merchant_application_approve(operator=user, application_id=application_id)
            messages.success(request, _("%(shop)s is now verified.") % {"shop": application.shop_name})
        else:
            application = services.merchant_application_reject(
                operator=user, application_id=application_id, note=form.cleaned_data["note"]
            )
            messages.success(request, _("%(shop)s was rejected.") % {"shop": application.shop_name})
    except PermissionDenied:
        return render(request, "accounts/forbidden.html", status=403)
    except ServiceError as exc:
        messages.error(request, _error_text(exc))
    return redirect("accounts:operator_merchants")


@login_required
@require_http_methods(["GET", "POST"])
def operator_merchant_revoke(request: HttpRequest, user_id: int) -> HttpResponse:
    """Take a merchant's V badge away: a page to confirm it, and the confirmed POST that does it."""
    user: User = request.user  # type: ignore[assignment]
    try:
        merchant = queries.verified_merchant_for_operator(user, user_id)
    except PermissionDenied:
        return render(request, "accounts/forbidden.html", status=403)
    except ServiceError:
        messages.error(request, _("This account is not a verified merchant."))
        return redirect("accounts:operator_merchants")
    form = MerchantRevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.merchant_verification_revoke(
                operator=user, user_id=merchant.pk, note=form.cleaned_data["note"]
            )
        except ServiceError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(
                request, _("%(name)s is no longer a verified merchant.") % {"name": merchant.name_to_show}
            )
        return redirect("accounts:operator_merchants")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "merchant": merchant}
    return render(request, "accounts/operator_merchant_revoke.html", context, status=status)
