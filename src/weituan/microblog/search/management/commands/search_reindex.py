"""`weituan search_reindex`: rebuild the post search index from the posts table."""

from typing import Any

from django.core.management.base import BaseCommand

from weituan.microblog.search.services import posts_reindex


class Command(BaseCommand):
    help = "Rebuild the post search index (FTS5 on SQLite, tsvector on PostgreSQL) from every live post."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args: Any, **options: Any) -> None:
        count = posts_reindex(batch_size=options["batch_size"])
        self.stdout.write(f"Indexed {count} posts.")
