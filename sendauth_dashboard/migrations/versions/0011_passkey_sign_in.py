"""Signing in with a passkey: a sign-in challenge is for no user until a passkey signs it; an
index to tell a user's first passkey from a later one (risk signals)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_actor_id_kind', ['actor_id', 'kind'], unique=False)
    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(op.f('ck_passkey_challenges_purpose'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_passkey_challenges_purpose'),
            "purpose IN ('verify', 'register', 'prove', 'sign_in')")


def downgrade():
    op.execute("DELETE FROM passkey_challenges WHERE user_id IS NULL OR purpose = 'sign_in'")
    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_passkey_challenges_purpose'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_passkey_challenges_purpose'), "purpose IN ('verify', 'register', 'prove')")
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_actor_id_kind')
