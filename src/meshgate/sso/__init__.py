"""Single sign-on for organizations: OpenID Connect with any issuer (Google as a preset)."""
