"""Per-day tallies of how requests and their notifications ended, for insights over months
(services/reports/tallies.py); filled from the rows already there, for UTC's days

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# Whole seconds on the clock between two timestamps, each cut to the second (-1 without an
# end); the UTC day.
SQL = {
    "sqlite": {"seconds": "COALESCE(CAST(strftime('%s', substr({end}, 1, 19)) AS INTEGER) - "
                          "CAST(strftime('%s', substr({start}, 1, 19)) AS INTEGER), -1)",
               "day": "date(substr({column}, 1, 19))", "text": "CAST({column} AS TEXT)"},
    "postgresql": {"seconds": "COALESCE(CAST(extract(epoch FROM date_trunc('second', {end}) - "
                              "date_trunc('second', {start})) AS INTEGER), -1)",
                   "day": "CAST({column} AS DATE)", "text": "CAST({column} AS VARCHAR)"},
}


def fill_statements(dialect):
    sql = SQL[dialect]
    answer = sql["seconds"].format(start="created_at", end="completed_at")
    sent = answer
    day = sql["day"].format(column="created_at")
    insert = ("INSERT INTO insight_tallies (offset_minutes, day, subject, key, outcome, "
              "seconds, count) ")
    people = [
        f"{insert} SELECT 0, {day}, '{subject}', {sql['text'].format(column=column)}, '', -1, "
        f"count(*) FROM transactions GROUP BY {day}, {column}"
        for subject, column in (("requestor", "requestor_id"), ("user", "user_id"))]
    return [
        f"{insert} SELECT 0, {day}, 'request', '', status, -1, count(*) FROM transactions "
        f"WHERE status <> 'pending' GROUP BY {day}, status",
        f"{insert} SELECT 0, {day}, 'answer', '', '', {answer}, count(*) FROM transactions "
        f"WHERE status IN ('verified', 'denied') GROUP BY {day}, {answer}",
        f"{insert} SELECT 0, {day}, 'delivery', channel, status, "
        f"CASE WHEN status = 'sent' THEN {sent} ELSE -1 END, count(*) "
        f"FROM deliveries WHERE action = 'notify' AND status IN ('sent', 'failed', 'cancelled') "
        f"GROUP BY {day}, channel, status, CASE WHEN status = 'sent' THEN {sent} ELSE -1 END",
        *people,
    ]


def upgrade():
    op.create_table('insight_offsets',
    sa.Column('minutes', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('minutes', name=op.f('pk_insight_offsets'))
    )
    op.create_table('insight_tallies',
    sa.Column('offset_minutes', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('seconds', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('offset_minutes', 'subject', 'day', 'key', 'outcome', 'seconds',
                            name=op.f('pk_insight_tallies'))
    )
    op.execute("INSERT INTO insight_offsets (minutes) VALUES (0)")
    for statement in fill_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade():
    op.drop_table('insight_tallies')
    op.drop_table('insight_offsets')
