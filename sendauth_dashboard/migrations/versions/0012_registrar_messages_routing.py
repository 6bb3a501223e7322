"""The registrar role, between reviewer and admin; the organisation's own messages; routing
rules from a request's tags to a person

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'routing_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('tag_key', sa.String(length=64), nullable=False),
        sa.Column('tag_value', sa.String(length=128), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_routing_rules_created_by_id_users')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_routing_rules_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_rules')),
        sa.UniqueConstraint('position', name=op.f('uq_routing_rules_position')),
        sa.UniqueConstraint('tag_key', 'tag_value', name='uq_routing_rules_tag'),
    )
    op.create_table(
        'message_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email_subject', sa.Text(), nullable=True),
        sa.Column('email_body', sa.Text(), nullable=True),
        sa.Column('sms_body', sa.Text(), nullable=True),
        sa.Column('slack_text', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'],
                                name=op.f('fk_message_templates_updated_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_users_role'), "role IN ('member', 'requestor', 'reviewer', 'registrar', "
                                   "'admin')")


def downgrade():
    op.drop_table('routing_rules')
    op.drop_table('message_templates')
    # A registrar had the reviewer's powers and more: going back, they keep the reviewer's.
    op.execute("UPDATE users SET role = 'reviewer' WHERE role = 'registrar'")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_users_role'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_users_role'), "role IN ('member', 'requestor', 'reviewer', 'admin')")
