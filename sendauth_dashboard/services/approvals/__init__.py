"""Who a request goes to when the sender does not name a person: routing rules by tag."""
