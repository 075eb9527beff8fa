"""Serve Weituan under uvicorn (uvloop + httptools) for the benchmark; on exit, flush the write buffer and write its counts."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")


def main() -> None:
    port, stats_path = int(sys.argv[1]), sys.argv[2]
    import django

    django.setup()
    import uvicorn

    from weituan.asgi import application
    from weituan.tracking.buffer import write_buffer
    from weituan.tracking.facade import events_flush

    events_flush()  # as `weituan serve` does before it serves: what a stopped process left is stored

    uvicorn.run(
        application,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        loop="uvloop",  # what `weituan serve` gets from uvicorn's "auto" when both are installed
        http="httptools",
    )
    buffer = write_buffer()
    buffer.stop()
    stats = buffer.stats()
    with open(stats_path, "w") as handle:
        json.dump({"accepted": stats.accepted, "stored": stats.stored, "pending": stats.pending,
                   "spilled": stats.spilled, "failed_flushes": stats.failed_flushes}, handle)  # fmt: skip


if __name__ == "__main__":
    main()
