-- wrk script for `make bench`: one JSON line with the figures the runner reads.
-- With BENCH_UNIQUE set, "{n}" in the path becomes a counter, so every request is a cache miss.
local template = os.getenv("BENCH_UNIQUE")
if template then
  local counter = 0
  -- Each wrk thread has its own Lua state: seed each differently, or they would repeat each other.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
  request = function()
    counter = counter + 1
    return wrk.format(nil, (template:gsub("{n}", tostring(math.random(1, 2^30) * 64 + counter % 64))))
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
