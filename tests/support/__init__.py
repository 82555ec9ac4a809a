"""What the tests share, loaded as a pytest plugin by the root conftest (`pytest_plugins`).

- waiting: `wait_until`, the one poll loop; `port_open`, `wait_for_port`, `wait_for_http`
- net: `free_port`, `closed_port`, `silent_server`, `StatsdListener`
- http: `Reply` (what a server answered), `call_wsgi`, `api_error`
- processes: `ROOT`, `manage`, `stop_process_group`, `process_table`, `descendants`, `alive`,
  and Celery workers and beat (`celery`, `start_celery`, `celery_env`, `database_url`, `publishing_to`)
- redis_servers: `redis_server` (a private redis-server that can be killed, paused and restarted),
  `redis_sentinel`
- postgres: private PostgreSQL clusters (`postgres_cluster`, `primary_and_replica`)
- web: the app under gunicorn (`running_web`, `Web`) and a cookie-keeping `Browser`
- stack: the whole production stack (`Stack` and the `stack` fixture)
- fixtures: the fixtures every test may ask for, and the fault report
"""
