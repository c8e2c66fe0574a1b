-- wrk script for scripts/load: walks pre-signed kycd requests (one slice per thread, written by
-- scripts/load_requests.py) and counts responses per key, kind and status.
--
--   wrk -t2 -c1000 -d60s --latency -s scripts/load.lua http://127.0.0.1:PORT -- <request dir>
--
-- <request dir> holds `meta` (timestamp, key ids, request shapes) and `req.<thread>` (fixed-width
-- records: 22-char nonce + 64-char signature + "\n"). Every record is sent at most once; when a
-- thread runs out it sends an unsigned GET /healthz instead (never a replay), counts it as
-- overflow and stops itself.
--
-- The nonce is also sent as X-Request-Id, which kycd echoes in every response (errors included),
-- so response() can attribute each response to its key and kind without shared state.

local RECORD_LEN = 87
local NONCE_LEN = 22

local threads = {}
local thread_no = 0

function setup(thread)
   thread_no = thread_no + 1
   thread:set("tid", thread_no)
   table.insert(threads, thread)
end

-- Thread state (each wrk thread has its own Lua state).
local data, nrec, pos = nil, 0, 0
local prefix = {}      -- prefix[kind][key] = request line + fixed headers up to the nonce
local suffix = {}      -- suffix[kind] = body headers + blank line + body
counts = {}            -- "key|kind|status|h" -> n (read by done() via thread:get); h = 1 when
                       -- the response carries X-RateLimit-Limit (it went through the limiter)
codes = {}             -- "status|code" -> n       (error codes of every non-200 response)
issued = 0             -- pre-signed requests handed to wrk
overflow = 0           -- requests sent after the slice ran out
slice = 0

function init(args)
   local dir = args[1] or os.getenv("LOAD_REQUESTS_DIR")
   assert(dir, "usage: wrk ... -s load.lua URL -- <request dir>")
   local meta = assert(io.open(dir .. "/meta", "r"))
   local ts, host
   local keys, kinds = {}, {}
   for line in meta:lines() do
      local what, rest = line:match("^(%S+) (.*)$")
      if what == "ts" then ts = rest
      elseif what == "host" then host = rest
      elseif what == "key" then
         local i, id = rest:match("^(%d+) (%S+)$")
         keys[tonumber(i)] = id
      elseif what == "get_content_length_zero" then get_cl0 = rest == "1"
      elseif what == "kind" then
         local k, method, path, body = rest:match("^(%a) (%u+) (%S+) ?(.*)$")
         kinds[k] = { method = method, path = path, body = body or "" }
      end
   end
   meta:close()
   for k, s in pairs(kinds) do
      prefix[k] = {}
      for i, id in pairs(keys) do
         prefix[k][i] = s.method .. " " .. s.path .. " HTTP/1.1\r\n" ..
            "Host: " .. host .. "\r\n" ..
            "X-API-KEY: " .. id .. "\r\n" ..
            "X-API-TIMESTAMP: " .. ts .. "\r\n"
      end
      if #s.body > 0 then
         suffix[k] = "Content-Type: application/json\r\nContent-Length: " .. #s.body ..
            "\r\n\r\n" .. s.body
      elseif get_cl0 then
         suffix[k] = "Content-Length: 0\r\n\r\n"
      else
         suffix[k] = "\r\n"
      end
   end
   local f = assert(io.open(dir .. "/req." .. tid, "rb"))
   data = f:read("*a")
   f:close()
   nrec = math.floor(#data / RECORD_LEN)
   slice = nrec
   healthz = "GET /healthz HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
end

function request()
   if pos >= nrec then
      overflow = overflow + 1
      if overflow == 1 then
         io.stderr:write(string.format("load.lua: thread %d ran out of pre-signed requests " ..
            "after %d; stopping it\n", tid, issued))
      end
      wrk.thread:stop()
      return healthz
   end
   local off = pos * RECORD_LEN
   pos = pos + 1
   issued = issued + 1
   local nonce = data:sub(off + 1, off + NONCE_LEN)
   local sig = data:sub(off + NONCE_LEN + 1, off + RECORD_LEN - 1)
   local kind = nonce:sub(9, 9)
   local key = tonumber(nonce:sub(10, 12))
   return prefix[kind][key] ..
      "X-API-NONCE: " .. nonce .. "\r\n" ..
      "X-Request-Id: " .. nonce .. "\r\n" ..
      "X-API-SIGN: " .. sig .. "\r\n" ..
      suffix[kind]
end

function response(status, headers, body)
   local rid = headers["x-request-id"] or headers["X-Request-Id"]
   local key, kind = "?", "?"
   if rid and #rid == NONCE_LEN then
      kind = rid:sub(9, 9)
      key = rid:sub(10, 12)
   end
   local h = (headers["x-ratelimit-limit"] or headers["X-RateLimit-Limit"]) and "1" or "0"
   local c = key .. "|" .. kind .. "|" .. status .. "|" .. h
   counts[c] = (counts[c] or 0) + 1
   if status ~= 200 then
      local code = body and body:match('"code"%s*:%s*"([^"]+)"') or "none"
      local e = status .. "|" .. code
      codes[e] = (codes[e] or 0) + 1
   end
end

function done(summary, latency, requests)
   local total, totals_codes = {}, {}
   for _, t in ipairs(threads) do
      local c = t:get("counts") or {}
      for k, n in pairs(c) do total[k] = (total[k] or 0) + n end
      local e = t:get("codes") or {}
      for k, n in pairs(e) do totals_codes[k] = (totals_codes[k] or 0) + n end
      print(string.format("LOAD thread tid=%d issued=%d overflow=%d slice=%d",
         t:get("tid"), t:get("issued") or 0, t:get("overflow") or 0, t:get("slice") or 0))
   end
   local keys = {}
   for k in pairs(total) do table.insert(keys, k) end
   table.sort(keys)
   for _, k in ipairs(keys) do
      local key, kind, status, h = k:match("^([^|]+)|([^|]+)|([^|]+)|([^|]+)$")
      print(string.format("LOAD count key=%s kind=%s status=%s limiter=%s n=%d",
         key, kind, status, h, total[k]))
   end
   for k, n in pairs(totals_codes) do
      local status, code = k:match("^([^|]+)|(.+)$")
      print(string.format("LOAD code status=%s code=%s n=%d", status, code, n))
   end
   local e = summary.errors
   print(string.format("LOAD errors connect=%d read=%d write=%d status=%d timeout=%d",
      e.connect, e.read, e.write, e.status, e.timeout))
   print(string.format("LOAD summary duration_us=%d requests=%d bytes=%d",
      summary.duration, summary.requests, summary.bytes))
   print(string.format("LOAD latency p50=%d p90=%d p99=%d p999=%d max=%d mean=%.1f stdev=%.1f",
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, latency.stdev))
end
