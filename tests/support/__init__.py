"""What the tests (and bench/) share: configuration, accounts made the product's way, a
browser-like client, servers and waiting on conditions. conftest.py holds only fixtures."""
