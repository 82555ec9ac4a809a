/*
 * statsd (the etsy/statsd Node.js daemon) for the app's host: receives the app's and gunicorn's UDP
 * packets on 8125 and flushes them to Graphite's carbon every 10 seconds.
 * Install: npm install -g statsd; run: statsd /etc/statsd/config.js (keep it alive with supervisor).
 * The flush interval must equal the finest retention in storage-schemas.conf (10s), or Graphite
 * stores only some flushes and the counts per point are wrong.
 */
{
  graphitePort: 2003,
  graphiteHost: "127.0.0.1",
  port: 8125,
  // Only this host (the app, its workers and gunicorn) sends; do not listen on public addresses.
  address: "127.0.0.1",
  backends: ["./backends/graphite"],
  flushInterval: 10000,
  // Keep the new-style namespaces: stats.counters.<prefix>..., stats.timers.<prefix>..., stats.gauges.<prefix>...
  graphite: {
    legacyNamespace: false,
    globalPrefix: "stats"
  },
  // Upper and 95th-percentile timings per flush; mean, count and sum are always sent.
  percentThreshold: [95, 99],
  // A counter or timer with no packet in a flush is not sent at all (no stream of zeros);
  // gauges keep their last value, so a stopped sampler does not look like an empty queue.
  deleteCounters: true,
  deleteTimers: true,
  deleteGauges: false
}
