"""Browser URLs of the pages that span apps: home, profiles, topics, search, trending, notifications."""

from django.urls import path
from django.views.i18n import set_language

from weituan.web import (
    share_links,
    views,
    views_discover,
    views_filters,
    views_follow_requests,
    views_lists,
    views_people,
)

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("timeline/new", views.home_new, name="home_new"),
    path("notifications", views.notifications, name="notifications"),
    path("notifications/badge", views.notifications_badge, name="notifications_badge"),
    path("bookmarks", views.bookmarks, name="bookmarks"),
    path("lists", views_lists.lists_page, name="lists"),
    path("lists/<int:list_id>", views_lists.list_manage, name="list_manage"),
    path("lists/<int:list_id>/rename", views_lists.list_rename, name="list_rename"),
    path("lists/<int:list_id>/delete", views_lists.list_delete, name="list_delete"),
    path("lists/<int:list_id>/members", views_lists.list_member_change, name="list_member"),
    path("follow-requests", views_follow_requests.follow_requests, name="follow_requests"),
    path("follow-requests/lock", views_follow_requests.account_lock, name="account_lock"),
    path(
        "follow-requests/<str:username>",
        views_follow_requests.follow_request_decide,
        name="follow_request_decide",
    ),
    path("settings/filters", views_filters.keyword_filters, name="keyword_filters"),
    path("settings/filters/add", views_filters.keyword_filter_add, name="keyword_filter_add"),
    path(
        "settings/filters/<int:filter_id>/remove",
        views_filters.keyword_filter_remove,
        name="keyword_filter_remove",
    ),
    path("search", views_discover.search, name="search"),
    path("trending", views_discover.trending, name="trending"),
    path("topics/<str:name>", views_discover.topic, name="topic"),
    path("@<str:username>", views_people.profile, name="profile"),
    path("@<str:username>/followers", views_people.followers, name="followers"),
    path("@<str:username>/following", views_people.following, name="following"),
    path("@<str:username>/relation", views_people.relation_change, name="relation"),
    path("p/<int:post_id>/share", share_links.share_link, name="share_link"),
    path("p/<int:post_id>/deal", share_links.post_deal, name="post_deal"),
    path("i18n/setlang", set_language, name="set_language"),
    path("healthz", views.healthz, name="healthz"),
]
