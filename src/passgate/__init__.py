"""Passgate: a self-hostable identity provider whose users sign in with passkeys."""

__version__ = "0.1.0"
