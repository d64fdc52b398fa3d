"""Authentication (OTP, tokens) and authorisation (principal, roles, permissions) of the API."""
