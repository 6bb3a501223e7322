"""Who a request goes to and who approves it: routing rules by tag, approval groups and
the answers of a group's members."""
