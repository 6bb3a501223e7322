"""Authentication requests: sending, listing, answering and verifying them, what weakens an
answer, routing, the delivery report and PagerDuty's incidents."""
