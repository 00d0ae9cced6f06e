-- wrk script for bench/bench_http.py: session cookies and writes.
--
--   wrk ... -s bench/wrk_session.lua http://127.0.0.1:PORT -- MODE COOKIE [COOKIE...]
--
-- MODE "read" requests /read, "write" requests /write/<n> with a new n each time.
-- Requests rotate over the COOKIE values given (each a "name=value" pair; one value:
-- every request carries the same session). done() prints one line, "wrk-json {...}".

local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local mode, cookies, sent = "read", {}, 0

function init(args)
   mode = args[1]
   for i = 2, #args do
      cookies[#cookies + 1] = args[i]
   end
end

function request()
   sent = sent + 1
   local path = "/read"
   if mode == "write" then
      path = "/write/" .. (id * 1000000000 + sent)
   end
   return wrk.format("GET", path, { ["Cookie"] = cookies[(sent - 1) % #cookies + 1] })
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'wrk-json {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, '
         .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, '
         .. '"mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.mean, latency.max
   ))
end
