-- wrk script for scripts/rolling-restart.sh: the bearer token (ROLL_TOKEN) on every request, a
-- count of the responses that are not 2xx (wrk's own counts only statuses above 399), and one
-- JSON line of results at the end.
local token = os.getenv("ROLL_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

non_2xx = 0

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non_2xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(99), latency.max))
end
