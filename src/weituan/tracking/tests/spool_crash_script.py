# ruff: noqa: E402 - Django must be set up before the tracking modules are imported
"""Run in a subprocess by test_spool: record clicks through the write buffer as /s/ does, then die by SIGKILL."""

import os
import signal
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

import django

django.setup()

from weituan.tracking.buffer import write_buffer
from weituan.tracking.channels import LinkFacts
from weituan.tracking.links_cache import ResolvedLink
from weituan.tracking.services.events import click_add

count = int(sys.argv[1])
link = ResolvedLink(
    facts=LinkFacts(
        link_id=77, channel="microblog", hop_depth=1, sharer_id=5, post_id=9, deal_id=None, campaign=""
    ),
    target_url="https://weituan.example/d/9",
)
buffer = write_buffer()
buffer.interval = 3600  # nothing is flushed before the kill
for i in range(count):
    click_add(link=link, visitor_id=f"crashvisitor{i:05d}", user_id=None, referrer="https://t.co/x",
              user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", ip="203.0.113.9")  # fmt: skip
print(buffer.stats().accepted, flush=True)  # every click answered: its line is in the spool
os.kill(os.getpid(), signal.SIGKILL)
