"""Background tasks of the timelines: deliver a post to followers' home timelines, or take it back out."""

from django.tasks import task


@task()
def fanout_deliver_task(*, post_id: int) -> None:
    from weituan.microblog.timelines.fanout import fanout_deliver

    fanout_deliver(post_id=post_id)


@task()
def fanout_withdraw_task(*, post_id: int, author_id: int) -> None:
    from weituan.microblog.timelines.fanout import fanout_withdraw

    fanout_withdraw(post_id=post_id, author_id=author_id)


@task()
def home_timeline_add_author_task(*, user_id: int, author_id: int) -> None:
    from weituan.microblog.timelines.home import home_timeline_add_author

    home_timeline_add_author(user_id=user_id, author_id=author_id)


@task()
def home_timeline_drop_authors_task(*, user_id: int, author_ids: list[int], with_reposts: bool) -> None:
    from weituan.microblog.timelines.home import home_timeline_drop_authors

    home_timeline_drop_authors(user_id=user_id, author_ids=author_ids, with_reposts=with_reposts)


@task()
def fanout_jobs_prune_task() -> int:
    from weituan.microblog.timelines.fanout import fanout_jobs_prune

    return fanout_jobs_prune()


@task()
def fanout_sweep_task() -> int:
    from weituan.microblog.timelines.fanout import fanout_sweep

    return fanout_sweep()
