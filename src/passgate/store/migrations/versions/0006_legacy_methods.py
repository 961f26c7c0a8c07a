"""Legacy methods (password, TOTP) and what a session proved

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('passwords',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('software_oath_methods',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('last_counter', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_software_oath_methods_user_id'), 'software_oath_methods', ['user_id'], unique=False)

    # Plain ADD COLUMN, never a batch table copy (see 0003): other tables point at sessions' rows by id.
    op.add_column('sessions', sa.Column('auth_methods', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    # Existing sessions are passkey or Temporary Access Pass sign-ins. Which kind of pass is not on the
    # session; the user's current pass is the best evidence left, and multi-use the weaker claim otherwise.
    op.execute("UPDATE sessions SET auth_methods = '[\"fido2\"]' WHERE method = 'passkey'")
    one_time = ("EXISTS (SELECT 1 FROM temporary_access_passes t WHERE t.user_id = sessions.user_id"
                " AND t.is_usable_once = true)")
    op.execute("UPDATE sessions SET auth_methods = '[\"temporaryAccessPassOneTime\"]'"
               f" WHERE method = 'temporaryAccessPass' AND {one_time}")
    op.execute("UPDATE sessions SET auth_methods = '[\"temporaryAccessPassMultiUse\"]'"
               f" WHERE method = 'temporaryAccessPass' AND NOT {one_time}")


def downgrade() -> None:
    op.drop_column('sessions', 'auth_methods')
    op.drop_index(op.f('ix_software_oath_methods_user_id'), table_name='software_oath_methods')
    op.drop_table('software_oath_methods')
    op.drop_table('passwords')
