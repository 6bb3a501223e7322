"""Single sign-on: people sign in through the organisation's OpenID Connect provider
(discovery, settings, the authorization code flow, who the ID token says it is, and the rule
that passwords stop working when single sign-on is required)."""
