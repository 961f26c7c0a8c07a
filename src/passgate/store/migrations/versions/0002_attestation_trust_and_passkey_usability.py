"""attestation trust and passkey usability

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mds_blobs',
    sa.Column('serial', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('next_update', sa.String(length=10), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=1024), nullable=False),
    sa.Column('blob', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('serial')
    )
    op.create_table('trust_anchors',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('thumbprint', sa.String(length=64), nullable=False),
    sa.Column('certificate_der', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('thumbprint')
    )
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attestation_trust_anchor', sa.String(length=256), nullable=True))
        # Existing passkeys have no certificates on record.
        batch_op.add_column(sa.Column('attestation_certificates', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('mds_status', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('profile_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('unusable_code', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unusable_reason', sa.Text(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.drop_column('unusable_reason')
        batch_op.drop_column('unusable_code')
        batch_op.drop_column('profile_id')
        batch_op.drop_column('mds_status')
        batch_op.drop_column('attestation_certificates')
        batch_op.drop_column('attestation_trust_anchor')

    op.drop_table('trust_anchors')
    op.drop_table('mds_blobs')
