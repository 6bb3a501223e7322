"""Single sign-on through the organisation's OpenID Connect provider: its settings (one row, the
client secret only encrypted), the provider's accounts linked to users, break-glass admins

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_in_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=2048), nullable=True),
    sa.Column('client_id', sa.String(length=255), nullable=True),
    sa.Column('client_secret_ciphertext', sa.Text(), nullable=True),
    sa.Column('allowed_domains', sa.JSON(), nullable=False),
    sa.Column('button_label', sa.String(length=64), nullable=True),
    sa.Column('role_claim', sa.String(length=64), nullable=True),
    sa.Column('role_map', sa.JSON(), nullable=False),
    sa.Column('require_sso', sa.Boolean(), nullable=False),
    sa.Column('authorization_endpoint', sa.String(length=2048), nullable=True),
    sa.Column('token_endpoint', sa.String(length=2048), nullable=True),
    sa.Column('jwks_uri', sa.String(length=2048), nullable=True),
    sa.Column('signing_algorithms', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_sign_in_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_settings'))
    )
    op.create_table('sign_on_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=2048), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sign_on_identities_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_on_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_sign_on_identities_issuer'))
    )
    with op.batch_alter_table('sign_on_identities', schema=None) as batch_op:
        batch_op.create_index('ix_sign_on_identities_user_id', ['user_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('break_glass', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('break_glass')

    with op.batch_alter_table('sign_on_identities', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_on_identities_user_id')

    op.drop_table('sign_on_identities')
    op.drop_table('sign_in_settings')
