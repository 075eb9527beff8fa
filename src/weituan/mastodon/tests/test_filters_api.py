"""Keyword filters through the Mastodon API with the test client: v2's filters, keywords and statuses
in Mastodon's shapes, v1's one-keyword filters, scopes, someone else's filter, refusals with a code and
nothing written, and `filtered` and hidden statuses on every read that applies them."""

from typing import Any

import pytest

from weituan.accounts.tokens import access_token_issue
from weituan.microblog.models import FilterKeyword, FilterStatus, KeywordFilter
from weituan.microblog.services.filters import FILTER_KEYWORDS_MAX
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _made(client: Any, **fields: Any) -> dict[str, Any]:
    body = {"title": "屏蔽剧透", "context": ["home"], "filter_action": "warn", **fields}
    response = client.post("/api/v2/filters", body, content_type=JSON)
    assert response.status_code == 200, response.content
    return response.json()


def _counts() -> tuple[int, int, int]:
    return KeywordFilter.objects.count(), FilterKeyword.objects.count(), FilterStatus.objects.count()


def test_a_filter_is_made_read_changed_and_removed_in_mastodons_shapes(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    made = _made(
        client,
        context=["home", "public"],
        filter_action="hide",
        expires_in=3600,
        keywords_attributes=[{"keyword": "剧透", "whole_word": False}, {"keyword": "spoiler"}],
    )
    assert set(made) == {"id", "title", "context", "expires_at", "filter_action", "keywords", "statuses"}
    assert (made["title"], made["context"], made["filter_action"]) == ("屏蔽剧透", ["home", "public"], "hide")
    assert made["expires_at"] is not None and made["statuses"] == []
    assert [(k["keyword"], k["whole_word"]) for k in made["keywords"]] == [("剧透", False), ("spoiler", True)]
    assert client.get("/api/v2/filters").json() == [made]
    assert client.get(f"/api/v2/filters/{made['id']}").json() == made

    spoiler = made["keywords"][1]
    changed = client.put(
        f"/api/v2/filters/{made['id']}",
        {
            "title": "剧透",
            "context": ["thread"],
            "expires_in": "",
            "keywords_attributes": [
                {"id": spoiler["id"], "_destroy": True},
                {"id": made["keywords"][0]["id"], "whole_word": True},
                {"keyword": "结局"},
            ],
        },
        content_type=JSON,
    ).json()
    assert (changed["title"], changed["context"], changed["expires_at"]) == ("剧透", ["thread"], None)
    assert [(k["keyword"], k["whole_word"]) for k in changed["keywords"]] == [("剧透", True), ("结局", True)]

    keywords = f"/api/v2/filters/{made['id']}/keywords"
    added = client.post(keywords, {"keyword": "大结局", "whole_word": "false"}).json()
    assert added == {"id": added["id"], "keyword": "大结局", "whole_word": False}
    assert [k["keyword"] for k in client.get(keywords).json()] == ["剧透", "结局", "大结局"]
    for path in (f"/api/v2/filter_keywords/{added['id']}", f"/api/v2/filters/keywords/{added['id']}"):
        assert client.get(path).json() == added
    renamed = client.put(f"/api/v2/filter_keywords/{added['id']}", {"keyword": "全剧终"}, content_type=JSON)
    assert renamed.json()["keyword"] == "全剧终"
    assert client.delete(f"/api/v2/filter_keywords/{added['id']}").json() == {}
    assert client.get(f"/api/v2/filter_keywords/{added['id']}").status_code == 404

    assert client.delete(f"/api/v2/filters/{made['id']}").json() == {}
    assert client.get("/api/v2/filters").json() == []
    assert _counts() == (0, 0, 0)


def test_status_filters(api_as: Any, shopper: Any, merchant: Any) -> None:
    client = api_as(shopper)
    post = post_create(author=merchant, text="不想再看到这条")
    made = _made(client)
    statuses = f"/api/v2/filters/{made['id']}/statuses"
    added = client.post(statuses, {"status_id": str(post.id)}).json()
    assert added == {"id": added["id"], "status_id": str(post.id)}
    assert client.get(statuses).json() == [added]
    assert client.get(f"/api/v2/filters/statuses/{added['id']}").json() == added
    again = client.post(statuses, {"status_id": str(post.id)})
    assert (again.status_code, again.json()["code"]) == (422, "filter_status_taken")
    assert client.post(statuses, {"status_id": "99999"}).status_code == 404
    assert client.delete(f"/api/v2/filters/statuses/{added['id']}").json() == {}
    assert FilterStatus.objects.count() == 0


def test_v1_filters_are_one_keyword_each(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    made = client.post(
        "/api/v1/filters", {"phrase": "广告", "context[]": ["home", "notifications"], "irreversible": "true"}
    ).json()
    assert made == {
        "id": made["id"],
        "phrase": "广告",
        "context": ["home", "notifications"],
        "whole_word": True,
        "expires_at": None,
        "irreversible": True,
    }
    # It is a v2 filter too, titled by its keyword, which hides.
    (v2,) = client.get("/api/v2/filters").json()
    assert (v2["title"], v2["filter_action"], v2["keywords"][0]["id"]) == ("广告", "hide", made["id"])
    assert client.get("/api/v1/filters").json() == [made]
    changed = client.put(
        f"/api/v1/filters/{made['id']}",
        {"phrase": "推广", "context": ["public"], "irreversible": False},
        content_type=JSON,
    ).json()
    assert (changed["phrase"], changed["context"], changed["irreversible"]) == ("推广", ["public"], False)
    # A filter of several keywords cannot have its contexts changed through one of them.
    client.post(f"/api/v2/filters/{v2['id']}/keywords", {"keyword": "软广"})
    refused = client.put(f"/api/v1/filters/{made['id']}", {"context": ["home"]}, content_type=JSON)
    assert (refused.status_code, refused.json()["code"]) == (422, "filter_v1_multiple_keywords")
    assert KeywordFilter.objects.get().context == "public"
    assert len(client.get("/api/v1/filters").json()) == 2
    assert client.delete(f"/api/v1/filters/{made['id']}").json() == {}
    assert [f["phrase"] for f in client.get("/api/v1/filters").json()] == ["软广"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"keywords_attributes": [{"keyword": ""}]}, "filter_keyword_blank"),
        ({"keywords_attributes": [{"keyword": "   "}]}, "filter_keyword_blank"),
        ({"context": ["home", "everywhere"]}, "filter_context_unknown"),
        ({"context": []}, "filter_context_blank"),
        ({"filter_action": "delete"}, "filter_action_unknown"),
        ({"title": ""}, "filter_title_blank"),
        ({"expires_in": "soon"}, "filter_expires_in"),
        (
            {"keywords_attributes": [{"keyword": f"词{n}"} for n in range(FILTER_KEYWORDS_MAX + 1)]},
            "filter_keywords_limit",
        ),
    ],
)
def test_a_bad_filter_is_refused_with_a_code_and_nothing_written(
    api_as: Any, shopper: Any, body: dict[str, Any], code: str
) -> None:
    client = api_as(shopper)
    fields = {"title": "屏蔽", "context": ["home"], "keywords_attributes": [{"keyword": "剧透"}], **body}
    refused = client.post("/api/v2/filters", fields, content_type=JSON)
    assert (refused.status_code, refused.json()["code"]) == (422, code), refused.content
    assert "error" in refused.json()
    assert _counts() == (0, 0, 0)


def test_a_bad_change_writes_nothing(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    made = _made(client, keywords_attributes=[{"keyword": "剧透"}])
    path = f"/api/v2/filters/{made['id']}"
    refused = client.put(
        path,
        {"title": "新名字", "keywords_attributes": [{"keyword": "新词"}, {"keyword": ""}]},
        content_type=JSON,
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "filter_keyword_blank")
    refused = client.put(path, {"title": "新名字", "context": ["nowhere"]}, content_type=JSON)
    assert (refused.status_code, refused.json()["code"]) == (422, "filter_context_unknown")
    adding = client.post(f"{path}/keywords", {"keyword": " "})
    assert (adding.status_code, adding.json()["code"]) == (422, "filter_keyword_blank")
    assert client.get(path).json() == made


def test_someone_elses_filter_is_not_found(api_as: Any, shopper: Any, outsider: Any) -> None:
    made = _made(api_as(shopper), keywords_attributes=[{"keyword": "剧透"}])
    keyword_id = made["keywords"][0]["id"]
    other = api_as(outsider)
    for method, path in [
        ("get", f"/api/v2/filters/{made['id']}"),
        ("put", f"/api/v2/filters/{made['id']}"),
        ("delete", f"/api/v2/filters/{made['id']}"),
        ("get", f"/api/v2/filters/{made['id']}/keywords"),
        ("post", f"/api/v2/filters/{made['id']}/keywords"),
        ("get", f"/api/v2/filter_keywords/{keyword_id}"),
        ("put", f"/api/v2/filter_keywords/{keyword_id}"),
        ("delete", f"/api/v2/filter_keywords/{keyword_id}"),
        ("get", f"/api/v1/filters/{keyword_id}"),
        ("put", f"/api/v1/filters/{keyword_id}"),
        ("delete", f"/api/v1/filters/{keyword_id}"),
    ]:
        response = getattr(other, method)(path, {"keyword": "x", "title": "x"}, content_type=JSON)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), (method, path)
    assert other.get("/api/v2/filters").json() == []
    assert api_as(shopper).get(f"/api/v2/filters/{made['id']}").json() == made


def test_the_filter_scopes(shopper: Any) -> None:
    from django.test import Client

    def client(scopes: str) -> Client:
        raw, _ = access_token_issue(user=shopper, scopes=scopes)
        return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    body = {"title": "x", "context": ["home"]}
    assert client("read:filters").get("/api/v2/filters").status_code == 200
    assert client("read:statuses").get("/api/v2/filters").status_code == 403
    assert client("read:filters").post("/api/v2/filters", body, content_type=JSON).status_code == 403
    assert client("write:filters").post("/api/v2/filters", body, content_type=JSON).status_code == 200
    assert KeywordFilter.objects.count() == 1


def _timeline(client: Any, path: str) -> dict[str, dict[str, Any]]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return {status["id"]: status for status in response.json()}


def test_reads_carry_filtered_and_leave_hidden_statuses_out(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    follow_create(follower=shopper, followee_id=outsider.pk)
    spoiler = post_create(author=merchant, text="大结局剧透：他是凶手")
    ad = post_create(author=merchant, text="Huge SALE today")
    sales = post_create(author=merchant, text="wholesale prices")
    plain = repost_create(reposter=outsider, post_id=spoiler.id)
    quiet = post_create(author=merchant, text="今天天气不错")
    client = api_as(shopper)
    before = _timeline(client, "/api/v1/timelines/home")
    assert all(status["filtered"] == [] for status in before.values())

    warn = _made(
        client,
        title="剧透",
        context=["home", "public", "account", "thread"],
        keywords_attributes=[{"keyword": "剧透"}],
    )
    hide = _made(
        client,
        title="ads",
        filter_action="hide",
        context=["home", "account"],
        keywords_attributes=[{"keyword": "sale", "whole_word": True}],
    )
    home = _timeline(client, "/api/v1/timelines/home")
    assert set(home) == {
        str(spoiler.id),
        str(sales.id),
        str(plain.id),
        str(quiet.id),
    }  # the SALE post is hidden
    (result,) = home[str(spoiler.id)]["filtered"]
    assert result == {
        "filter": {key: warn[key] for key in ("id", "title", "context", "expires_at", "filter_action")},
        "keyword_matches": ["剧透"],
        "status_matches": None,
    }
    # A plain repost matches on its original's words, and so does the status it nests.
    assert home[str(plain.id)]["filtered"][0]["keyword_matches"] == ["剧透"]
    assert home[str(plain.id)]["reblog"]["filtered"][0]["filter"]["id"] == warn["id"]
    assert home[str(sales.id)]["filtered"] == [] and home[str(quiet.id)]["filtered"] == []

    # Paging goes on past a page that lost statuses to a hiding filter.
    page = client.get("/api/v1/timelines/home?limit=1")
    newest = [str(post.id) for post in (quiet, plain, sales, ad, spoiler)]
    assert [status["id"] for status in page.json()] == newest[:1]
    older = client.get(f"/api/v1/timelines/home?limit=1&max_id={sales.id}")
    assert older.json() == [] and f"max_id={ad.id}" in older["Link"]
    oldest = client.get(f"/api/v1/timelines/home?limit=1&max_id={ad.id}")
    assert [status["id"] for status in oldest.json()] == newest[-1:]

    public = _timeline(client, "/api/v1/timelines/public")
    assert str(ad.id) in public and public[str(ad.id)]["filtered"] == []  # ads hide on home and account only
    assert public[str(spoiler.id)]["filtered"][0]["keyword_matches"] == ["剧透"]
    account = _timeline(client, f"/api/v1/accounts/{merchant.pk}/statuses")
    assert str(ad.id) not in account and account[str(spoiler.id)]["filtered"] != []

    # An expired filter applies to nothing; nor do others' filters.
    client.put(f"/api/v2/filters/{hide['id']}", {"expires_in": 1}, content_type=JSON)
    KeywordFilter.objects.filter(id=hide["id"]).update(expires_at="2000-01-01T00:00:00Z")
    assert str(ad.id) in _timeline(client, "/api/v1/timelines/home")
    assert all(
        status["filtered"] == []
        for status in _timeline(api_as(outsider), "/api/v1/timelines/public").values()
    )


def test_threads_and_notifications_apply_their_filters(api_as: Any, shopper: Any, merchant: Any) -> None:
    from weituan.microblog.services.interactions import comment_create

    post = post_create(author=shopper, text="求推荐火锅店")
    comment_create(author=merchant, post_id=post.id, text="来我们店，全场五折 SALE")
    comment_create(author=merchant, post_id=post.id, text="剧透一下：明天有新品")
    client = api_as(shopper)
    _made(
        client,
        title="ads",
        filter_action="hide",
        context=["thread", "notifications"],
        keywords_attributes=[{"keyword": "sale"}],
    )
    _made(client, title="剧透", context=["notifications"], keywords_attributes=[{"keyword": "剧透"}])
    descendants = client.get(f"/api/v1/statuses/{post.id}/context").json()["descendants"]
    assert [status["content"].count("剧透") for status in descendants] == [1]
    assert descendants[0]["filtered"] == []  # the 剧透 filter is for notifications only
    notifications = client.get("/api/v1/notifications").json()
    assert len(notifications) == 1
    assert notifications[0]["status"]["filtered"][0]["keyword_matches"] == ["剧透"]


def test_the_home_read_in_front_of_django_is_left_to_django_only_for_a_filtered_reader(
    shopper: Any, merchant: Any, django_assert_num_queries: Any
) -> None:
    from weituan.core.testing import CountingWSGI
    from weituan.mastodon.api_timelines_fast import with_home_timeline_wsgi
    from weituan.microblog.services.filters import filter_create
    from weituan.microblog.timelines.home import token_read_context
    from weituan.microblog.timelines.tests.test_home_fast_path import _wsgi_get

    follow_create(follower=shopper, followee_id=merchant.pk)
    post_create(author=merchant, text="剧透来了")
    raw, _ = access_token_issue(user=shopper)
    app = CountingWSGI()

    def answered_by_django() -> bool:
        before = app.calls
        _wsgi_get(with_home_timeline_wsgi(app), "/api/v1/timelines/home", HTTP_AUTHORIZATION=f"Bearer {raw}")
        return app.calls > before

    # The token and the whole read context, whether the reader has a home filter included: one statement.
    with django_assert_num_queries(1):
        assert token_read_context(raw).context.filtered is False  # type: ignore[union-attr]
    assert not answered_by_django()
    elsewhere = filter_create(
        owner=shopper, title="x", contexts=["public", "thread"], keywords=[("剧透", True)]
    )
    assert not answered_by_django()  # a filter of other places leaves the home read in front
    home = filter_create(owner=shopper, title="y", contexts=["home"], keywords=[("剧透", True)])
    with django_assert_num_queries(1):
        assert token_read_context(raw).context.filtered is True  # type: ignore[union-attr]
    assert answered_by_django()
    KeywordFilter.objects.filter(id=home.id).update(expires_at="2000-01-01T00:00:00Z")
    assert not answered_by_django()  # an expired one applies to nothing
    assert elsewhere.id != home.id


def test_a_lists_timeline_takes_the_home_filters(api_as: Any, shopper: Any, merchant: Any) -> None:
    from weituan.microblog.services.lists import follow_list_create, follow_list_members_add

    follow_create(follower=shopper, followee_id=merchant.pk)
    shops = follow_list_create(owner=shopper, title="店")
    follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk])
    ad = post_create(author=merchant, text="Flash SALE")
    spoiler = post_create(author=merchant, text="剧透：半价")
    client = api_as(shopper)
    _made(client, title="ads", filter_action="hide", keywords_attributes=[{"keyword": "sale"}])
    _made(client, title="剧透", keywords_attributes=[{"keyword": "剧透"}])
    listed = client.get(f"/api/v1/timelines/list/{shops.pk}").json()
    assert [status["id"] for status in listed] == [str(spoiler.id)]
    assert listed[0]["filtered"][0]["keyword_matches"] == ["剧透"]
    assert str(ad.id) in _timeline(client, "/api/v1/timelines/public")
