"""The ground floor, imported by every other part of core and importing none of them: metrics
(statsd), logging, the request id every log line and task carries, and Sentry."""
