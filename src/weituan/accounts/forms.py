"""Browser forms of accounts: they parse input only; the writes happen in services.py."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from weituan.accounts.models import PostPrivacy, QuotePolicy
from weituan.accounts.profile_fields import (
    MAX_FIELD_NAME_LENGTH,
    MAX_FIELD_VALUE_LENGTH,
    MAX_PROFILE_FIELDS,
    ProfileField,
)
from weituan.accounts.queries import user_for_login


class SignupForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=30,
        help_text=_("2–30 letters, digits, underscores or Chinese characters; people @mention you by it."),
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
    )
    display_name = forms.CharField(label=_("Display name"), max_length=50, required=False)
    email = forms.EmailField(label=_("E-mail"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters, not a common password."),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class LoginForm(AuthenticationForm):
    """Log in with the username or the e-mail address (either without regard to case)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The username, e-mail address or password is wrong. Please try again."),
    }

    username = forms.CharField(
        label=_("Username or e-mail"),
        max_length=254,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}
        ),
    )

    def clean(self) -> dict[str, Any]:
        identifier = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if identifier and password:
            user = user_for_login(identifier)
            self.user_cache = authenticate(
                self.request, username=user.username if user else identifier, password=password
            )
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


# What the profile and the compose box offer, in the words people read there.
QUOTE_POLICY_CHOICES = [
    (QuotePolicy.PUBLIC.value, _("Anyone")),
    (QuotePolicy.FOLLOWERS.value, _("My followers")),
    (QuotePolicy.NOBODY.value, _("Only me")),
]


# What the profile and the compose box offer for who sees a post.
POST_PRIVACY_CHOICES = [
    (PostPrivacy.PUBLIC.value, _("Public")),
    (PostPrivacy.UNLISTED.value, _("Unlisted (not in public timelines)")),
    (PostPrivacy.PRIVATE.value, _("Followers only")),
]


class ProfileForm(forms.Form):
    """The profile page's form: the basic fields (`main_fields`), then the rows of name/value pairs
    (`pair_rows`), field_name_<n> and field_value_<n> for n from 0."""

    display_name = forms.CharField(label=_("Display name"), max_length=50, required=False)
    bio = forms.CharField(
        label=_("Bio"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    # A plain file field: the image itself is checked (format, size, bombs) by the service.
    avatar = forms.FileField(
        label=_("Avatar"),
        required=False,
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}),
    )
    locale = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("Browser default")), *settings.LANGUAGES]
    )
    quote_policy = forms.ChoiceField(
        label=_("Who may quote my new posts"), required=False, choices=QUOTE_POLICY_CHOICES
    )
    default_privacy = forms.ChoiceField(
        label=_("Who sees my new posts"), required=False, choices=POST_PRIVACY_CHOICES
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["avatar"].help_text = _("JPEG, PNG, GIF or WebP, at most %(size)s.") % {
            "size": filesizeformat(settings.MEDIA_MAX_BYTES)
        }
        for index in range(MAX_PROFILE_FIELDS):
            self.fields[f"field_name_{index}"] = forms.CharField(
                label=_("Label %(number)s") % {"number": index + 1},
                max_length=MAX_FIELD_NAME_LENGTH,
                required=False,
                widget=forms.TextInput(attrs={"placeholder": _("Label, such as Online shop")}),
            )
            self.fields[f"field_value_{index}"] = forms.CharField(
                label=_("Content %(number)s") % {"number": index + 1},
                max_length=MAX_FIELD_VALUE_LENGTH,
                required=False,
                widget=forms.TextInput(attrs={"placeholder": _("Content, such as a link")}),
            )

    @staticmethod
    def pair_initial(pairs: list[ProfileField]) -> dict[str, str]:
        """Initial values of the pair rows for the profile's current pairs."""
        initial: dict[str, str] = {}
        for index, pair in enumerate(pairs[:MAX_PROFILE_FIELDS]):
            initial[f"field_name_{index}"] = pair.name
            initial[f"field_value_{index}"] = pair.value
        return initial

    def main_fields(self) -> list[Any]:
        return [field for field in self.visible_fields() if not field.name.startswith("field_")]

    def pair_rows(self) -> list[tuple[Any, Any]]:
        return [
            (self[f"field_name_{index}"], self[f"field_value_{index}"]) for index in range(MAX_PROFILE_FIELDS)
        ]

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs typed, every row (the service drops the empty ones); call once the form is valid."""
        data = self.cleaned_data
        return [
            (data[f"field_name_{index}"], data[f"field_value_{index}"]) for index in range(MAX_PROFILE_FIELDS)
        ]


class MerchantApplicationForm(forms.Form):
    shop_name = forms.CharField(label=_("Shop name"), max_length=100)
    description = forms.CharField(
        label=_("About the shop"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("What you sell, where, and how customers can reach you."),
    )


class MerchantDecisionForm(forms.Form):
    application_id = forms.IntegerField(min_value=1)
    decision = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
    note = forms.CharField(max_length=500, required=False)


class MerchantRevokeForm(forms.Form):
    note = forms.CharField(
        label=_("Reason"),
        max_length=500,
        required=False,
        help_text=_("Kept with the record of the verification, and shown to the merchant."),
    )
    confirm = forms.BooleanField(
        label=_("Yes, take the V badge away from this merchant"),
        error_messages={"required": _("Tick the box to confirm.")},
    )
