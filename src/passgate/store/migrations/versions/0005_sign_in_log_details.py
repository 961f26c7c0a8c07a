"""Sign-in log details (Conditional Access, authentication steps, device, protocol) and log query indexes

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_FAILED = sa.text('error_code <> 0')
_NON_INTERACTIVE = sa.text('is_interactive = false')


def upgrade() -> None:
    # Plain ADD COLUMN with server defaults, never a batch table copy (see 0003): entries written before
    # this revision read as interactive, single-factor, with no Conditional Access applied.
    op.add_column('sign_ins', sa.Column('conditional_access_status', sa.String(length=16), nullable=False,
                                        server_default='notApplied'))
    op.add_column('sign_ins', sa.Column('applied_policies', sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))
    op.add_column('sign_ins', sa.Column('authentication_details', sa.JSON(), nullable=False,
                                        server_default=sa.text("'[]'")))
    op.add_column('sign_ins', sa.Column('authentication_requirement', sa.String(length=32), nullable=False,
                                        server_default='singleFactorAuthentication'))
    op.add_column('sign_ins', sa.Column('is_interactive', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.add_column('sign_ins', sa.Column('client_app_used', sa.String(length=64), nullable=True))
    op.add_column('sign_ins', sa.Column('authentication_protocol', sa.String(length=32), nullable=True))
    op.add_column('sign_ins', sa.Column('session_id', sa.String(length=36), nullable=True))
    op.add_column('sign_ins', sa.Column('resource_id', sa.String(length=36), nullable=True))
    op.add_column('sign_ins', sa.Column('resource_display_name', sa.String(length=256), nullable=True))
    op.add_column('sign_ins', sa.Column('operating_system', sa.String(length=64), nullable=True))
    op.add_column('sign_ins', sa.Column('browser', sa.String(length=64), nullable=True))

    # Each log filter's index ends in the keyset order (created_at, id); these replace the two-column ones.
    op.drop_index('ix_sign_ins_user_time', table_name='sign_ins')
    op.drop_index('ix_sign_ins_error_time', table_name='sign_ins')
    op.create_index('ix_sign_ins_user_time_id', 'sign_ins', ['user_id', 'created_at', 'id'])
    op.create_index('ix_sign_ins_upn_time_id', 'sign_ins', ['user_principal_name', 'created_at', 'id'])
    op.create_index('ix_sign_ins_app_time_id', 'sign_ins', ['app_id', 'created_at', 'id'])
    op.create_index('ix_sign_ins_error_time_id', 'sign_ins', ['error_code', 'created_at', 'id'])
    op.create_index('ix_sign_ins_failures_time', 'sign_ins', ['created_at', 'id'],
                    postgresql_where=_FAILED, sqlite_where=_FAILED)
    op.create_index('ix_sign_ins_non_interactive_time', 'sign_ins', ['created_at', 'id'],
                    postgresql_where=_NON_INTERACTIVE, sqlite_where=_NON_INTERACTIVE)
    op.create_index('ix_directory_audits_category_time', 'directory_audits', ['category', 'activity_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_directory_audits_category_time', table_name='directory_audits')
    for name in ('ix_sign_ins_non_interactive_time', 'ix_sign_ins_failures_time', 'ix_sign_ins_error_time_id', 'ix_sign_ins_app_time_id',
                 'ix_sign_ins_upn_time_id', 'ix_sign_ins_user_time_id'):
        op.drop_index(name, table_name='sign_ins')
    op.create_index('ix_sign_ins_error_time', 'sign_ins', ['error_code', 'created_at'])
    op.create_index('ix_sign_ins_user_time', 'sign_ins', ['user_id', 'created_at'])
    # Plain DROP COLUMN (SQLite 3.35+ drops in place): no table copy.
    for column in ('browser', 'operating_system', 'resource_display_name', 'resource_id', 'session_id',
                   'authentication_protocol', 'client_app_used', 'is_interactive', 'authentication_requirement',
                   'authentication_details', 'applied_policies', 'conditional_access_status'):
        op.drop_column('sign_ins', column)
