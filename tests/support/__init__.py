"""Test helpers that need no root and no kernel: random policies, the e2e
world as API objects, and the figures the test run prints at the end."""
