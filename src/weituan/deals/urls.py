"""Browser URLs of deals: shopper pages, merchant pages and voucher QR images."""

from django.urls import path

import weituan.deals.views as views
import weituan.deals.views_merchant as views_merchant

app_name = "deals"
urlpatterns = [
    path("deals/", views.deal_list, name="list"),
    path("deals/<int:deal_id>/", views.deal_page, name="deal"),
    path("deals/<int:deal_id>/card", views.deal_card_partial, name="card"),
    path("deals/<int:deal_id>/checkout", views.checkout, name="checkout"),
    path("teams/<int:team_id>/", views.team_page, name="team"),
    path("teams/<int:team_id>/merge", views.team_merge_view, name="team_merge"),
    path("me/orders/", views.my_orders, name="my_orders"),
    path("me/orders/<int:order_id>/<str:action>", views.order_action, name="order_action"),
    path("me/vouchers/", views.my_vouchers, name="my_vouchers"),
    path("me/wallet/", views.my_wallet, name="my_wallet"),
    path("vouchers/<str:code>.<str:fmt>", views.voucher_qr, name="voucher_qr"),
    path("invite/<str:username>", views.invite, name="invite"),
    path("merchant/deals/", views_merchant.deal_list, name="merchant_deals"),
    path("merchant/deals/new", views_merchant.deal_new, name="merchant_deal_new"),
    path("merchant/deals/<int:deal_id>/", views_merchant.deal_detail, name="merchant_deal"),
    path("merchant/deals/<int:deal_id>/edit", views_merchant.deal_edit, name="merchant_deal_edit"),
    path("merchant/deals/<int:deal_id>/progress", views_merchant.deal_progress, name="merchant_progress"),
    path("merchant/deals/<int:deal_id>/publish", views_merchant.deal_publish_view, name="merchant_publish"),
    path("merchant/redeem", views_merchant.redeem, name="merchant_redeem"),
    path("merchant/payouts", views_merchant.payouts, name="merchant_payouts"),
]
