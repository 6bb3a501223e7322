"""People: accounts, sign-ins, passkeys, proofs, enrolment links, messaging preferences and
the notices a change sends them."""
