"""Serving requests: middleware, the liveness probe, readiness checks, the site's views and error
handlers, database outages answered as 503, the client's address and the site menu."""
