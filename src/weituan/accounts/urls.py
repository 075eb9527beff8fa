"""Browser URLs of accounts, and the OAuth 2 endpoints."""

from django.urls import path

from weituan.accounts import views, views_oauth

app_name = "accounts"
urlpatterns = [
    path("accounts/signup", views.signup, name="signup"),
    path("accounts/login", views.LoginView.as_view(), name="login"),
    path("accounts/logout", views.LogoutView.as_view(), name="logout"),
    path("accounts/password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("settings/profile", views.profile_edit, name="profile_edit"),
    path("settings/profile", views.profile_edit, name="profile"),
    path("settings/password", views.PasswordChangeView.as_view(), name="password_change"),
    path("merchant/apply", views.merchant_apply, name="merchant_apply"),
    path("operator/merchants", views.operator_merchants, name="operator_merchants"),
    path("operator/merchants/decide", views.operator_merchant_decide, name="operator_merchant_decide"),
    path(
        "operator/merchants/<int:user_id>/revoke",
        views.operator_merchant_revoke,
        name="operator_merchant_revoke",
    ),
    path("oauth/authorize", views_oauth.authorize, name="oauth_authorize"),
    path("oauth/token", views_oauth.token, name="oauth_token"),
    path("oauth/revoke", views_oauth.revoke, name="oauth_revoke"),
    path(
        ".well-known/oauth-authorization-server",
        views_oauth.server_metadata,
        name="oauth_server_metadata",
    ),
]
