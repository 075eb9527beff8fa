"""Browser URLs of posts: compose, the post page and the actions on a post."""

from django.urls import path

from weituan.microblog import views

app_name = "microblog"
urlpatterns = [
    path("compose", views.compose, name="compose"),
    path("p/<int:post_id>", views.post_detail, name="post"),
    # The address the Mastodon API gives a status (its `url`), as Mastodon's own pages have it.
    path("@<str:username>/<int:post_id>", views.post_permalink, name="permalink"),
    path("p/<int:post_id>/comments", views.post_comments, name="comments"),
    path("p/<int:post_id>/like", views.like, name="like"),
    path("p/<int:post_id>/unlike", views.unlike, name="unlike"),
    path("p/<int:post_id>/bookmark", views.bookmark, name="bookmark"),
    path("p/<int:post_id>/unbookmark", views.unbookmark, name="unbookmark"),
    path("p/<int:post_id>/pin", views.pin, name="pin"),
    path("p/<int:post_id>/edit", views.edit, name="edit"),
    path("p/<int:post_id>/unpin", views.unpin, name="unpin"),
    path("p/<int:post_id>/repost", views.repost, name="repost"),
    path("p/<int:post_id>/comment", views.comment, name="comment"),
    path("p/<int:post_id>/delete", views.delete, name="delete"),
    path("p/<int:post_id>/quote_policy", views.quote_policy_view, name="quote_policy"),
    path("p/<int:post_id>/quotes/<int:quote_id>/revoke", views.quote_revoke_view, name="quote_revoke"),
]
