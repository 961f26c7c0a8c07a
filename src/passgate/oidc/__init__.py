"""OpenID Connect / OAuth 2.0: signing keys, app registrations, the token endpoint."""
