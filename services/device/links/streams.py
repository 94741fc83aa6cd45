"""What both links do with a bidi stream: send and receive until either side ends."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


async def run_until_either_ends(
    sender: Coroutine[Any, Any, None], receiver: Coroutine[Any, Any, None], name: str
) -> None:
    """Run a stream's send and receive loops; when one ends, cancel the other and raise.

    An error from the loop that ended first propagates; a loop that simply returns means
    the stream is over, reported as ConnectionError so the caller reconnects.
    """
    tasks = {
        asyncio.create_task(sender, name=f"{name}-send"),
        asyncio.create_task(receiver, name=f"{name}-receive"),
    }
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        raise ConnectionError(f"the {name} stream ended")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
