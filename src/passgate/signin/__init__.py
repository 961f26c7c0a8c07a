"""The sign-in flow engine, Temporary Access Passes and browser sessions."""
