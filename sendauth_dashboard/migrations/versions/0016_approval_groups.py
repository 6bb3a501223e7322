"""Approval groups: a name, members, a threshold; requests sent to one (each member's answer
an approval, the group's name and threshold kept as sent), a payload handed on when a request
ends, and routing rules that send to a group

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 15:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'approval_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('threshold', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('threshold >= 1', name=op.f('ck_approval_groups_threshold')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                name=op.f('fk_approval_groups_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_groups')),
        sa.UniqueConstraint('name', name=op.f('uq_approval_groups_name')),
    )
    op.create_table(
        'approval_group_members',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['approval_groups.id'], ondelete='CASCADE',
                                name=op.f('fk_approval_group_members_group_id_approval_groups')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_approval_group_members_user_id_users')),
        sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_approval_group_members')),
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('group_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('threshold', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_transactions_group_id_approval_groups'),
                                    'approval_groups', ['group_id'], ['id'], ondelete='SET NULL')
    op.create_table(
        'approvals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('transaction_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('not_asked', sa.String(length=200), nullable=True),
        sa.Column('decision', sa.String(length=16), nullable=True),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.Column('proof', sa.String(length=16), nullable=True),
        sa.CheckConstraint("decision IN ('verified', 'denied')",
                           name=op.f('ck_approvals_decision')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_approvals_transaction_id_transactions')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_approvals_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_approvals_token_hash')),
        sa.UniqueConstraint('transaction_id', 'user_id',
                            name='uq_approvals_transaction_id_user_id'),
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index('ix_approvals_transaction_id', ['transaction_id'], unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deliveries_transaction_id_channel_action', type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_transaction_id_channel_action_user_id',
                                          ['transaction_id', 'channel', 'action', 'user_id'])
    # A request to one person has no user_id on its deliveries, and NULLs never clash in the
    # constraint above: this keeps its one delivery per channel and action in the database.
    op.create_index('ux_deliveries_transaction_id_channel_action', 'deliveries',
                    ['transaction_id', 'channel', 'action'], unique=True,
                    sqlite_where=sa.text('user_id IS NULL'),
                    postgresql_where=sa.text('user_id IS NULL'))
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(op.f('fk_routing_rules_group_id_approval_groups'),
                                    'approval_groups', ['group_id'], ['id'])
        batch_op.create_check_constraint(op.f('ck_routing_rules_target'),
                                         '(user_id IS NULL) <> (group_id IS NULL)')


def downgrade():
    # A rule that sends to a group has no person to fall back to: it goes.
    op.execute("DELETE FROM routing_rules WHERE group_id IS NOT NULL")
    with op.batch_alter_table('routing_rules', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_routing_rules_target'), type_='check')
        batch_op.drop_constraint(op.f('fk_routing_rules_group_id_approval_groups'),
                                 type_='foreignkey')
        batch_op.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('group_id')
    # Only one notification per channel of a request stays (a group's first member's).
    op.execute("DELETE FROM deliveries WHERE user_id IS NOT NULL AND action <> 'notice' AND "
               "id NOT IN (SELECT min(id) FROM deliveries WHERE action <> 'notice' "
               "GROUP BY transaction_id, channel, action)")
    op.drop_index('ux_deliveries_transaction_id_channel_action', table_name='deliveries')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint('uq_deliveries_transaction_id_channel_action_user_id',
                                 type_='unique')
        batch_op.create_unique_constraint('uq_deliveries_transaction_id_channel_action',
                                          ['transaction_id', 'channel', 'action'])
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index('ix_approvals_transaction_id')
    op.drop_table('approvals')
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_transactions_group_id_approval_groups'),
                                 type_='foreignkey')
        batch_op.drop_column('payload')
        batch_op.drop_column('threshold')
        batch_op.drop_column('group_name')
        batch_op.drop_column('group_id')
    op.drop_table('approval_group_members')
    op.drop_table('approval_groups')
