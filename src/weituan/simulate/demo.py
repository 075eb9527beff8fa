"""The demo world: a small town of shoppers and merchants with follows, posts and reposts."""

from typing import Any


def demo_world_build(*, seed: int = 2012, progress: bool = False) -> str:
    raise NotImplementedError("the demo world arrives with the simulator")


def demo_world_build_if_empty(*, progress: bool = False) -> Any:
    from weituan.accounts.models import User

    if not User.objects.exists():
        return demo_world_build(progress=progress)
    return None
