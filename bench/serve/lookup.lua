-- wrk script of bench/serve: online lookups of random real entity keys, against sluice
-- or Feast, checking every response.
--
--   wrk -t1 -c16 -d20s --latency -s lookup.lua http://127.0.0.1:PORT -- \
--       mode=sluice-get keys=keys.txt view=plane_wide entity=tailnum [label=NAME] [token=sk_...]
--
-- mode=sluice-get    GET /v1/features/<view>/<key>                     (one entity)
-- mode=sluice-batch  POST /v1/features {"features":[view],"entities":[{entity: key}, ...]}
-- mode=feast         POST /get-online-features {"features":["view:f", ...], "entities":{entity: [keys]}}
--                    (features=FILE: the feature names, one a line; or service=NAME: a
--                    feature service instead of the list)
-- batch=N            entities per request (default 1; up to the number of keys, all distinct)
-- token=KEY          sends `Authorization: Bearer KEY`
-- query=Q            sluice-get: appends `?Q` to the path (e.g. query=as_of=2013-12-31)
--
-- Requests are built in init() (one per key for a single entity, 512 random batches
-- otherwise) so that choosing one costs wrk nothing. Every response must be 200 and look
-- like an answer: sluice-get's body holds "features"; a batch's holds "results" and no
-- view that is null (sluice) or NOT_FOUND (Feast), since every key asked exists. Anything
-- else is counted, and the first few are printed: a fast error page cannot pass for a
-- result. done() prints one line `RESULT {json}` that run.sh reads.

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
      if not k then error("lookup.lua: arguments are key=value, not " .. a) end
      o[k] = v
   end
   return o
end

local function read_lines(path)
   local f = io.open(path, "r")
   if not f then error("lookup.lua: cannot read " .. tostring(path)) end
   local out = {}
   for line in f:lines() do
      line = line:gsub("%s+$", "")
      if line ~= "" then out[#out + 1] = line end
   end
   f:close()
   if #out == 0 then error("lookup.lua: " .. path .. " is empty") end
   return out
end

local function json_str(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function url_seg(s)
   return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- `n` distinct random keys.
local function sample(keys, n)
   local idx, out = {}, {}
   for i = 1, n do
      local j = math.random(i, #keys)
      local a, b = idx[i] or i, idx[j] or j
      idx[i], idx[j] = b, a
      out[i] = keys[b]
   end
   return out
end

function init(args)
   local o = parse_args(args)
   mode = o.mode or error("lookup.lua: mode= is required")
   local keys = read_lines(o.keys or error("lookup.lua: keys= is required"))
   local view = o.view or "plane_wide"
   local entity = o.entity or "tailnum"
   local batch = tonumber(o.batch or "1")
   if batch < 1 or batch > #keys then error("lookup.lua: batch must be 1.." .. #keys) end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)

   local headers = function(json)
      local h = {}
      if json then h["Content-Type"] = "application/json" end
      if o.token and o.token ~= "" then h["Authorization"] = "Bearer " .. o.token end
      return h
   end
   local prefix = (o.prefix or ""):gsub("/$", "")
   -- query=as_of=2013-12-31: appended to sluice-get's path (`?as_of=...`).
   query = (o.query and o.query ~= "") and ("?" .. o.query) or ""

   reqs = {}
   local bodies = {}
   local function each_batch(make)
      if batch == 1 then
         for _, k in ipairs(keys) do reqs[#reqs + 1] = make({k}) end
      else
         for _ = 1, 512 do reqs[#reqs + 1] = make(sample(keys, batch)) end
      end
   end

   if mode == "sluice-get" then
      if batch ~= 1 then error("lookup.lua: sluice-get is one entity a request") end
      for _, k in ipairs(keys) do
         reqs[#reqs + 1] = wrk.format("GET", prefix .. "/v1/features/" .. url_seg(view) .. "/" .. url_seg(k) .. query, headers(false))
      end
      expect = '"features"'
   elseif mode == "sluice-batch" then
      each_batch(function(ks)
         local ents = {}
         for i, k in ipairs(ks) do ents[i] = "{" .. json_str(entity) .. ":" .. json_str(k) .. "}" end
         local body = '{"features":[' .. json_str(view) .. '],"entities":[' .. table.concat(ents, ",") .. "]}"
         return wrk.format("POST", prefix .. "/v1/features", headers(true), body)
      end)
      expect = '"results"'
      reject = json_str(view) .. "%s*:%s*null"
   elseif mode == "feast" then
      local sel
      if o.service and o.service ~= "" then
         sel = '"feature_service":' .. json_str(o.service)
      else
         local refs = {}
         for i, f in ipairs(read_lines(o.features or error("lookup.lua: feast needs features= or service="))) do
            refs[i] = json_str(view .. ":" .. f)
         end
         sel = '"features":[' .. table.concat(refs, ",") .. "]"
      end
      each_batch(function(ks)
         local vals = {}
         for i, k in ipairs(ks) do vals[i] = json_str(k) end
         local body = "{" .. sel .. ',"entities":{' .. json_str(entity) .. ":[" .. table.concat(vals, ",") .. "]}}"
         return wrk.format("POST", prefix .. "/get-online-features", headers(true), body)
      end)
      expect = '"results"'
      reject = "NOT_FOUND"
   else
      error("lookup.lua: mode is sluice-get, sluice-batch or feast, not " .. mode)
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
   elseif (expect and not body:find(expect, 1, true)) or (reject and body:find(reject)) then
      bad = bad + 1
   else
      return
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
      local s = t:get("samples") or {}
      for _, line in ipairs(s) do
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
