"""PagerDuty webhooks and resolving incidents: the signing secret, incidents as PagerDuty
tells them, webhook ids already taken in, a delivery's action, the auto-resolve setting

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pagerduty_incidents',
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.String(length=64), nullable=True),
    sa.Column('number', sa.BigInteger(), nullable=True),
    sa.Column('html_url', sa.String(length=500), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=200), nullable=True),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("state IN ('triggered', 'acknowledged', 'resolved')", name=op.f('ck_pagerduty_incidents_state')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_pagerduty_incidents_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_pagerduty_incidents'))
    )
    op.create_table('webhook_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_id', sa.String(length=128), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_receipts')),
    sa.UniqueConstraint('webhook_id', name=op.f('uq_webhook_receipts_webhook_id'))
    )
    with op.batch_alter_table('webhook_receipts', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_receipts_received_at', ['received_at'], unique=False)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('action', sa.String(length=16), server_default='notify', nullable=False))
        batch_op.drop_constraint('uq_deliveries_transaction_id_channel', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_transaction_id_channel_action', ['transaction_id', 'channel', 'action'])
        batch_op.create_check_constraint(op.f('ck_deliveries_action'), "action IN ('notify', 'resolve')")

    with op.batch_alter_table('pagerduty_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_secret_ciphertext', sa.Text(), nullable=True))

    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolve_pagerduty_incidents', sa.Boolean(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('organisation_settings', schema=None) as batch_op:
        batch_op.drop_column('resolve_pagerduty_incidents')

    with op.batch_alter_table('pagerduty_settings', schema=None) as batch_op:
        batch_op.drop_column('webhook_secret_ciphertext')

    op.execute("DELETE FROM deliveries WHERE action = 'resolve'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_deliveries_action'), type_='check')
        batch_op.drop_constraint('uq_deliveries_transaction_id_channel_action', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_transaction_id_channel', ['transaction_id', 'channel'])
        batch_op.drop_column('action')

    with op.batch_alter_table('webhook_receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_receipts_received_at')

    op.drop_table('webhook_receipts')
    op.drop_table('pagerduty_incidents')
