"""Accounts, passwords, tokens, sessions and login throttling."""
