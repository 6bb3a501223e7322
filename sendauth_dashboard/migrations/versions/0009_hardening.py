"""Hardening, round three: when a user last changed their password (a risk signal for a day),
when a signed-in session was last used (sessions end after an idle time), notices to a user
through the outbox (a delivery of no transaction)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE sign_ins SET last_seen_at = created_at")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('notice_ciphertext', sa.Text(), nullable=True))
        batch_op.alter_column('transaction_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(op.f('fk_deliveries_user_id_users'), 'users', ['user_id'],
                                    ['id'])
        batch_op.drop_constraint(op.f('ck_deliveries_action'), type_='check')
        batch_op.create_check_constraint(op.f('ck_deliveries_action'),
                                         "action IN ('notify', 'resolve', 'notice')")
        batch_op.create_check_constraint(
            op.f('ck_deliveries_about'),
            "(action = 'notice' AND transaction_id IS NULL AND user_id IS NOT NULL)"
            " OR (action <> 'notice' AND transaction_id IS NOT NULL)")


def downgrade():
    op.execute("DELETE FROM deliveries WHERE action = 'notice'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_deliveries_about'), type_='check')
        batch_op.drop_constraint(op.f('ck_deliveries_action'), type_='check')
        batch_op.create_check_constraint(op.f('ck_deliveries_action'),
                                         "action IN ('notify', 'resolve')")
        batch_op.drop_constraint(op.f('fk_deliveries_user_id_users'), type_='foreignkey')
        batch_op.alter_column('transaction_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('notice_ciphertext')
        batch_op.drop_column('user_id')
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
