"""Column types and helpers every table uses: aware UTC datetimes, event ids, check lists."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, TypeDecorator


def utcnow():
    return datetime.now(timezone.utc)


def in_list(values):
    """``IN ('a', 'b')``: a check constraint's list of the values a column accepts."""
    return "IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


EventId = BigInteger().with_variant(Integer, "sqlite")
