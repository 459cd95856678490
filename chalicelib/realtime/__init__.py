"""The WebSocket API: connections, rooms, tickets and replay (handlers); delivery (`live`: the
stores and the posts, `fanout`: large rooms in shards, `delivery`: store then post, the events
waiting for the invocation's end); the event catalogue and its listeners on top (`emitters`)."""
