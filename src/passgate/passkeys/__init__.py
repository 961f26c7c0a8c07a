"""WebAuthn ceremonies (py_webauthn), challenges, and the AAGUID catalogue."""
