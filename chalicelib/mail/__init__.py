"""Mail: the emails queue's SES sender and its templates (`jobs.py`), and the alert email for a
job that failed for good (`alerts.py`)."""
