"""The configuration version: one counter row that configuration writes move

Revision ID: 0008
Revises: 0007
"""

import time

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('config_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Starts at the clock (microseconds), not 0: a table dropped and created again (downgrade, upgrade) never
    # repeats a number a running process may have cached values under.
    op.bulk_insert(table, [{'id': 1, 'version': time.time_ns() // 1000}])


def downgrade() -> None:
    op.drop_table('config_version')
