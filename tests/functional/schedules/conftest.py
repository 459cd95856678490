"""The job tests' fixtures (a shared clock for Inkwell and moto's SQS, a hand-driven SQS poller,
test processors), for scheduled runs through the real worker."""

from tests.functional.jobs.conftest import clock, poller, register  # noqa: F401
