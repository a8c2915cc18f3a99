"""An exception as the one line a user sees: on stderr, in a row's `error` column, in a log."""
from __future__ import annotations


def first_line(e: BaseException, limit: int = 200, with_type: bool = False) -> str:
    """The first line of `e`'s message, cut to `limit` (LiteRT's messages run to pages)."""
    line = (str(e).strip().splitlines() or [""])[0][:limit]
    return f"{type(e).__name__}: {line}" if with_type else line
