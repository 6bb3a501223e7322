"""Row ids as they arrive in addresses and query strings.

Ids are INTEGER columns (32 bits on PostgreSQL) and event ids BIGINT; a larger number means
no row, not a server error (PostgreSQL refuses to compare it, SQLite to bind it).
"""
from werkzeug.routing import IntegerConverter

MAX_ROW_ID = 2**31 - 1
MAX_EVENT_ID = 2**63 - 1


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number past MAX_ROW_ID matches no route, so 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def row_id(value, maximum=MAX_ROW_ID):
    """For ``request.args.get(name, type=row_id)``: ValueError (so the default) unless a
    whole number from 0 to ``maximum``."""
    number = int(value)
    if not 0 <= number <= maximum:
        raise ValueError(f"{value!r} is not a row id")
    return number
