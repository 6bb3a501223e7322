"""trust: typed call-binding code, risk signals, server-side challenges for every purpose,
enrolment links and invitations, server-side sign-ins

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('enrolment_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('reset', sa.Boolean(), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('invitation', 'passkey')", name=op.f('ck_enrolment_links_kind')),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_enrolment_links_issued_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_enrolment_links_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolment_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_enrolment_links_token_hash'))
    )
    with op.batch_alter_table('enrolment_links', schema=None) as batch_op:
        batch_op.create_index('ix_enrolment_links_user_id', ['user_id'], unique=False)

    op.create_table('sign_ins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sign_ins_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_ins')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sign_ins_token_hash'))
    )
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.create_index('ix_sign_ins_user_id', ['user_id'], unique=False)

    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='verify', nullable=False))
        batch_op.alter_column('transaction_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(
            op.f('ck_passkey_challenges_purpose'), "purpose IN ('verify', 'register', 'prove')")

    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risks', sa.JSON(), server_default='[]', nullable=False))
        batch_op.alter_column('binding_code', existing_type=sa.String(length=2),
                              type_=sa.String(length=3), existing_nullable=True)
        batch_op.drop_column('wrong_picks')
        batch_op.drop_column('binding_choices')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('passkeys_reset_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('contacts_changed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('contacts_changed_at')
        batch_op.drop_column('passkeys_reset_at')

    # A typed code has three digits; the old column held two, so pending codes are dropped.
    op.execute("UPDATE transactions SET binding_code = NULL")
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('binding_choices', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('wrong_picks', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('binding_code', existing_type=sa.String(length=3),
                              type_=sa.String(length=2), existing_nullable=True)
        batch_op.drop_column('risks')

    op.execute("DELETE FROM passkey_challenges WHERE transaction_id IS NULL")
    with op.batch_alter_table('passkey_challenges', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_passkey_challenges_purpose'), type_='check')
        batch_op.alter_column('transaction_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('purpose')

    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_ins_user_id')

    op.drop_table('sign_ins')
    with op.batch_alter_table('enrolment_links', schema=None) as batch_op:
        batch_op.drop_index('ix_enrolment_links_user_id')

    op.drop_table('enrolment_links')
