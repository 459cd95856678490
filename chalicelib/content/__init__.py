"""What the jobs act on: articles and their state machine, analytics events, settings."""
