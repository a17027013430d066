-- wrk script shared by every scenario of bench/run.sh.
--
-- Usage: wrk ... -s bench/wrk.lua URL -- REQUESTS_FILE
--
-- REQUESTS_FILE holds one request per line, "METHOD<TAB>PATH<TAB>COOKIE" (COOKIE may be
-- empty). Every request is formatted once in init(), so the per-request cost on the
-- client is one table lookup, the same in every scenario (also the baseline). Each
-- thread starts at its own offset so the threads do not send the same cookie in step.
--
-- With WRK_COUNT_STATUS=1 in the environment, responses are counted by status (200,
-- 204, other). That makes wrk parse every response's headers and call Lua, which costs
-- client CPU, so only the polling scenario turns it on (and run.sh measures that cost
-- on the baseline too).
--
-- done() prints one machine-readable line that run.sh parses:
--   BENCH requests=N duration_us=N p50_us=N p99_us=N non2xx3xx=N connect=N read=N
--         write=N timeout=N n200=N n204=N nother=N

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

local requests = {}
local next_index = 1

function init(args)
   local path = args[1]
   local file = assert(io.open(path, "r"), "cannot open requests file " .. tostring(path))
   for line in file:lines() do
      local method, req_path, cookie = line:match("^([^\t]+)\t([^\t]+)\t?(.*)$")
      if method then
         local headers = { Host = wrk.headers["Host"] }
         if cookie ~= "" then
            headers["Cookie"] = cookie
         end
         -- A POST carries an empty body with Content-Length: 0, as a browser's htmx does.
         local body = nil
         if method == "POST" then
            body = ""
         end
         table.insert(requests, wrk.format(method, req_path, headers, body))
      end
   end
   file:close()
   assert(#requests > 0, "no requests in " .. path)
   -- Spread the threads over the list (id is set by setup() before init() runs).
   next_index = ((id or 1) - 1) * math.floor(#requests / 2) % #requests + 1
end

function request()
   local req = requests[next_index]
   next_index = next_index % #requests + 1
   return req
end

n200, n204, nother = 0, 0, 0

if os.getenv("WRK_COUNT_STATUS") == "1" then
   function response(status, headers, body)
      if status == 204 then
         n204 = n204 + 1
      elseif status == 200 then
         n200 = n200 + 1
      else
         nother = nother + 1
      end
   end
end

function done(summary, latency, requests_done)
   local c200, c204, cother = 0, 0, 0
   for _, thread in ipairs(threads) do
      c200 = c200 + (thread:get("n200") or 0)
      c204 = c204 + (thread:get("n204") or 0)
      cother = cother + (thread:get("nother") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx3xx=%d connect=%d read=%d write=%d timeout=%d n200=%d n204=%d nother=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.status, e.connect, e.read, e.write, e.timeout, c200, c204, cother))
end
