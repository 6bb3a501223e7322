"""channel settings: one table each for email (SMTP), SMS (Twilio) and Slack

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:09:17.981185

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('tls_mode', sa.String(length=16), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=True),
    sa.Column('password_ciphertext', sa.Text(), nullable=True),
    sa.Column('from_address', sa.String(length=254), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("tls_mode IN ('none', 'starttls', 'tls')", name=op.f('ck_email_settings_tls_mode')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_email_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_settings'))
    )
    op.create_table('slack_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('bot_token_ciphertext', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_slack_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_slack_settings'))
    )
    op.create_table('sms_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('account_sid', sa.String(length=34), nullable=True),
    sa.Column('auth_token_ciphertext', sa.Text(), nullable=True),
    sa.Column('sender', sa.String(length=16), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_sms_settings_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_settings'))
    )


def downgrade():
    op.drop_table('sms_settings')
    op.drop_table('slack_settings')
    op.drop_table('email_settings')
