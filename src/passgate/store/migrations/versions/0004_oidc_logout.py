"""OpenID Connect logout and server-bound sign-in freshness: apps' back-channel logout URI, pending
authorization requests

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_pending_authorizations',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('binding', sa.String(length=64), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['app_id'], ['apps.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('oauth_pending_authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_pending_authorizations_expires_at'), ['expires_at'],
                              unique=False)

    # Plain ADD COLUMN, never a batch "move and copy": on SQLite, recreating `apps` would drop it, and
    # ON DELETE CASCADE would take every client secret, code and token family with it (see 0003).
    op.add_column('apps', sa.Column('backchannel_logout_uri', sa.String(length=1024), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ drops in place): no table copy, so no cascade onto app_secrets.
    op.drop_column('apps', 'backchannel_logout_uri')
    with op.batch_alter_table('oauth_pending_authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_pending_authorizations_expires_at'))
    op.drop_table('oauth_pending_authorizations')
