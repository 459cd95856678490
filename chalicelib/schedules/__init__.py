"""Scheduled tasks on EventBridge, exactly once per slot: `service` (the flow: Lambdas, routes,
outcomes, the no-overlap guard), `slots` (what a slot is, keys, payloads), `store` (last runs
and the run lease)."""
