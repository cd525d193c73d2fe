-- wrk script of bench/models: online and batch predictions of random real flights from
-- `sluice serve`, checking every response.
--
--   wrk -t1 -c16 -d20s --latency -s predict.lua http://127.0.0.1:PORT -- \
--       mode=predict model=late bodies=bodies.jsonl [label=NAME] [token=sk_...]
--
-- mode=predict   POST /v1/predict/<model> with one line of bodies= as the body (a request
--                body as JSON on one line: {"entity": {...}} or {"values": {...}})
-- mode=get       GET /v1/predictions/<model>/<key>, a line of keys= as the key (percent-encoded)
-- token=KEY      sends `Authorization: Bearer KEY`
--
-- Requests are built in init(), one per line, so that choosing one costs wrk nothing. Every
-- response must be 200 and hold a score ("score": a number, not null); anything else is
-- counted and the first few are printed, so that a fast error page cannot pass for a
-- prediction. done() prints one line `RESULT {json}` that run.sh reads (the same fields as
-- bench/serve/lookup.lua's).

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local function parse_args(args)
   local o = {}
   for _, a in ipairs(args) do
      local k, v = a:match("^([%w_]+)=(.*)$")
      if not k then error("predict.lua: arguments are key=value, not " .. a) end
      o[k] = v
   end
   return o
end

local function read_lines(path)
   local f = io.open(path, "r")
   if not f then error("predict.lua: cannot read " .. tostring(path)) end
   local out = {}
   for line in f:lines() do
      line = line:gsub("%s+$", "")
      if line ~= "" then out[#out + 1] = line end
   end
   f:close()
   if #out == 0 then error("predict.lua: " .. path .. " is empty") end
   return out
end

local function json_str(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function url_seg(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

function init(args)
   local o = parse_args(args)
   local mode = o.mode or error("predict.lua: mode= is required")
   local model = o.model or "late"
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   local headers = {}
   if o.token and o.token ~= "" then headers["Authorization"] = "Bearer " .. o.token end

   reqs = {}
   if mode == "predict" then
      local h = {["Content-Type"] = "application/json"}
      for k, v in pairs(headers) do h[k] = v end
      for _, body in ipairs(read_lines(o.bodies or error("predict.lua: predict needs bodies="))) do
         reqs[#reqs + 1] = wrk.format("POST", "/v1/predict/" .. url_seg(model), h, body)
      end
   elseif mode == "get" then
      for _, key in ipairs(read_lines(o.keys or error("predict.lua: get needs keys="))) do
         reqs[#reqs + 1] = wrk.format("GET", "/v1/predictions/" .. url_seg(model) .. "/" .. url_seg(key), headers)
      end
   else
      error("predict.lua: mode is predict or get, not " .. mode)
   end
   label = o.label or mode
   nreq = #reqs
   non200 = 0
   bad = 0
   samples = {}
end

function request()
   return reqs[math.random(nreq)]
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   elseif body and body:find('"score"%s*:%s*[-%d]') then
      return
   else
      bad = bad + 1
   end
   if #samples < 3 then
      samples[#samples + 1] = status .. " " .. (body or ""):sub(1, 300)
   end
end

function done(summary, latency, requests)
   local non, badn, shown = 0, 0, {}
   for _, t in ipairs(threads) do
      non = non + (t:get("non200") or 0)
      badn = badn + (t:get("bad") or 0)
      for _, line in ipairs(t:get("samples") or {}) do
         if #shown < 5 then shown[#shown + 1] = line end
      end
   end
   for _, line in ipairs(shown) do
      io.write("BAD RESPONSE: ", (line:gsub("[\r\n]", " ")), "\n")
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      'RESULT {"label":%s,"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_us":%.1f,"p90_us":%.1f,' ..
      '"p99_us":%.1f,"p999_us":%.1f,"max_us":%.1f,"mean_us":%.1f,"non200":%d,"bad_body":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"bytes":%d}\n',
      json_str(threads[1] and threads[1]:get("label") or "?"), summary.requests, secs,
      summary.requests / secs, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean, non, badn, e.connect, e.read, e.write,
      e.timeout, summary.bytes))
end
