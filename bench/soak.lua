-- wrk script for `make soak`: a weighted mix of what a site serves, paced by SOAK_DELAY_MS.
-- Pages, API reads (anonymous ones through nginx's micro-cache, authenticated ones past it),
-- autocomplete, and API writes that each queue a Celery task. The figures line comes from
-- report.lua (BENCH_REPORT_LUA), the same one `make bench` reads.
dofile(os.getenv("BENCH_REPORT_LUA"))

local token = os.getenv("SOAK_TOKEN")
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local slugs, prefixes = {}, {}
for slug in string.gmatch(os.getenv("SOAK_SLUGS") or "", "[^,]+") do slugs[#slugs + 1] = slug end
for prefix in string.gmatch(os.getenv("SOAK_PREFIXES") or "", "[^,]+") do prefixes[#prefixes + 1] = prefix end

-- Each wrk thread has its own Lua state: seed each differently, or they would repeat each other.
local thread_tag = tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003
math.randomseed(os.time() + thread_tag)
local counter = 0

local function pick(list) return list[math.random(1, #list)] end
local function authed(extra)
  local headers = { ["Authorization"] = "Token " .. token }
  for key, value in pairs(extra or {}) do headers[key] = value end
  return headers
end

local mix = {
  { 5, function() return wrk.format("GET", "/") end },
  { 10, function() return wrk.format("GET", "/articles/") end },
  { 10, function() return wrk.format("GET", "/articles/" .. pick(slugs) .. "/") end },
  { 12, function() return wrk.format("GET", "/api/v1/articles/") end },
  { 10, function() return wrk.format("GET", "/api/v1/articles/?page_size=" .. math.random(10, 50), authed()) end },
  { 15, function() return wrk.format("GET", "/api/v1/articles/" .. pick(slugs) .. "/", authed()) end },
  { 10, function() return wrk.format("GET", "/api/v1/articles/autocomplete/?q=" .. pick(prefixes)) end },
  { 10, function()
      return wrk.format("GET", "/api/v1/articles/autocomplete/?q=" .. pick(prefixes), authed())
    end },
  { 8, function()
      counter = counter + 1
      local body = string.format('{"title": "soak %d %d %d", "body": "written by make soak"}',
        thread_tag, os.time(), counter)
      return wrk.format("POST", "/api/v1/articles/", authed({ ["Content-Type"] = "application/json" }), body)
    end },
}
local total = 0
for _, entry in ipairs(mix) do total = total + entry[1] end

request = function()
  local roll = math.random() * total
  for _, entry in ipairs(mix) do
    roll = roll - entry[1]
    if roll <= 0 then return entry[2]() end
  end
  return mix[#mix][2]()
end

if delay_ms > 0 then
  delay = function() return delay_ms end
end
