"""Sign-in and audit logs: written in the transaction of the change they describe."""
