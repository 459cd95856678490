"""Inkwell's deployed code: everything the Lambda functions run, laid out by capability."""
