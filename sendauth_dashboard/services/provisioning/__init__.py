"""Who may act here, as the organisation decides it: switching a person's access on and off
(the one path for the users page, the API and SCIM), and provisioning by the identity
provider over SCIM 2.0 (its token, the people and groups it manages)."""
