"""Pages and the headless sign-in API."""
