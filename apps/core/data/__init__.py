"""Where data lives: the database router (replicas, read-your-writes), the cache's Redis client and
the Redis clients of other roles."""
