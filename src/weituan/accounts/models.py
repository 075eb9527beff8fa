"""Users and their profiles. A merchant is a user an operator has verified (the "V" badge)."""

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import pgettext_lazy

username_validator = RegexValidator(
    r"^[A-Za-z0-9_\u4e00-\u9fff]{2,30}$",
    "2–30 letters, digits, underscores or Chinese characters.",
    code="invalid_username",
)


class QuotePolicy(models.TextChoices):
    """Who may quote a post (repost it with a comment of their own), as Mastodon 4.5 sets it."""

    PUBLIC = "public", "anyone"
    FOLLOWERS = "followers", "followers"
    NOBODY = "nobody", "only me"


class PostPrivacy(models.TextChoices):
    """Who sees a new post unless its author chooses otherwise (Mastodon's `source[privacy]`). The
    values are the micro-blog's post visibilities; Weituan has no direct messages."""

    PUBLIC = "public", "public"
    UNLISTED = "unlisted", "unlisted"
    PRIVATE = "private", "followers only"


class User(AbstractUser):
    """A person or a shop. `username` is the @name used in mentions and the repost chain."""

    username = models.CharField(max_length=30, unique=True, validators=[username_validator])
    email = models.EmailField(blank=True)
    display_name = models.CharField(max_length=50, blank=True)
    bio = models.CharField(max_length=500, blank=True)
    avatar = models.ImageField(upload_to="avatars/%Y/%m/", blank=True)
    header = models.ImageField(upload_to="headers/%Y/%m/", blank=True)
    # Mastodon profile flags, kept so clients can read back what they set.
    locked = models.BooleanField(default=False)
    bot = models.BooleanField(default=False)
    discoverable = models.BooleanField(default=True)
    locale = models.CharField(max_length=10, blank=True)
    is_merchant = models.BooleanField(default=False)
    # The quote policy new posts get unless their author chooses another.
    quote_policy = models.CharField(
        max_length=10, choices=QuotePolicy.choices, default=QuotePolicy.PUBLIC, db_default=QuotePolicy.PUBLIC
    )
    # The visibility and language new posts get unless their author chooses others (Mastodon's
    # `source[privacy]` and `source[language]`, an ISO 639 code; blank: see `posting_language`).
    default_privacy = models.CharField(
        max_length=10, choices=PostPrivacy.choices, default=PostPrivacy.PUBLIC, db_default=PostPrivacy.PUBLIC
    )
    default_language = models.CharField(max_length=10, blank=True, default="", db_default="")
    # Mastodon's profile metadata: at most four {"name": ..., "value": ...} pairs of plain text, in the
    # order shown (see accounts.profile_fields).
    profile_fields = models.JSONField(default=list, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_operator = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return f"@{self.username}"

    @property
    def is_verified_merchant(self) -> bool:
        return self.is_merchant and self.verified_at is not None

    @property
    def name_to_show(self) -> str:
        return self.display_name or self.username

    @property
    def posting_language(self) -> str:
        """The language of a new post that names none: the chosen default, else the language of the
        site the account reads ("zh-hans" gives "zh"), as Mastodon falls back to the interface's; blank
        when neither is set."""
        if self.default_language:
            return self.default_language
        return self.locale.split("-")[0] if self.locale else ""


class MerchantApplication(models.Model):
    """A user's request to become a verified merchant; an operator approves or rejects it."""

    class State(models.TextChoices):
        PENDING = "pending", pgettext_lazy("merchant application", "Pending")
        APPROVED = "approved", pgettext_lazy("merchant application", "Approved")
        REJECTED = "rejected", pgettext_lazy("merchant application", "Rejected")
        # The badge it gave was taken away by an operator (`revoked_by`, `revoked_at`, and why).
        REVOKED = "revoked", pgettext_lazy("merchant application", "Revoked")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="merchant_applications")
    shop_name = models.CharField(max_length=100)
    description = models.TextField(max_length=2000, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision_note = models.CharField(max_length=500, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revocation_note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # At most one open application per user.
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(state="pending"), name="one_pending_merchant_application"
            )
        ]
        indexes = [models.Index(fields=["state", "created_at"])]


class OAuthApplication(models.Model):
    """A client registered through POST /api/v1/apps (Mastodon) or by an operator."""

    name = models.CharField(max_length=100)
    website = models.URLField(blank=True)
    redirect_uris = models.TextField(default="urn:ietf:wg:oauth:2.0:oob")  # one per line
    scopes = models.CharField(max_length=200, default="read")
    client_id = models.CharField(max_length=64, unique=True)
    client_secret = models.CharField(max_length=64)
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="oauth_apps"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class AuthorizationCode(models.Model):
    """A one-time code of the authorization-code grant; stored hashed, valid for minutes."""

    application = models.ForeignKey(OAuthApplication, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64, unique=True)
    redirect_uri = models.TextField()
    scopes = models.CharField(max_length=200)
    code_challenge = models.CharField(max_length=128, blank=True)
    code_challenge_method = models.CharField(max_length=10, blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class AccessToken(models.Model):
    """A bearer token for the API. Only its SHA-256 is stored; the token itself is shown once."""

    token_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(
        OAuthApplication, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="access_tokens"
    )
    scopes = models.CharField(max_length=200, default="read write follow push")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
