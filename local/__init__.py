"""The local stack: the whole serverless system on one machine (`make run`, tests/e2e).

It stands in for AWS, not for Inkwell: an embedded moto server holds the catalogue's resources,
and emulators call the very same Chalice handlers with AWS-shaped events (API Gateway REST and
WebSocket, SQS -> Lambda with batch item failures, EventBridge schedules). Nothing here is
deployed; nothing in `chalicelib` knows it runs locally apart from an endpoint URL.
"""
