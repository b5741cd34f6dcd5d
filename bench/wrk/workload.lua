-- Requests for one benchmark workload, and a machine-readable summary at the end.
--
--   wrk -t1 -c64 -d5s -s bench/wrk/workload.lua http://127.0.0.1:8080 -- <workload> <seed>
--
-- workloads: healthz | iris-cached | iris-uncached | sentiment-uncached | mixed
--            | iris-no-cache (not run by default)
-- "uncached" bodies are unique: the seed (new each run), the thread and a counter make
-- every one differ, so neither the shared cache nor an earlier run can answer them.
-- iris-no-cache sends those bodies with `Cache-Control: no-cache`, which the service
-- answers past every cache tier: beside iris-uncached it shows what the cache costs a miss.

local IRIS = "/v1/models/iris/predict"
local SENTIMENT = "/v1/models/sentiment/predict"
local HEADERS = { ["Content-Type"] = "application/json" }
local NO_CACHE = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-cache" }

local HOT_IRIS = {
  "[5.1,3.5,1.4,0.2]", "[4.9,3.0,1.4,0.2]", "[6.4,3.2,4.5,1.5]", "[5.7,2.8,4.1,1.3]",
  "[6.3,3.3,6.0,2.5]", "[7.2,3.0,5.8,1.6]", "[5.0,3.4,1.5,0.2]", "[6.7,3.1,5.6,2.4]",
}
local HOT_TEXT = {
  "great stuff, works exactly as promised", "terrible service, I want my money back",
  "the parcel arrived on tuesday", "absolutely love it, best purchase this year",
  "broke after two days, very disappointed", "it is a chair",
  "fantastic support team, quick and friendly", "not worth the price at all",
}
local OPENERS = { "honestly", "well", "so far", "after a week", "overall", "today" }
local VERDICTS = {
  "this is wonderful", "this is awful", "it works fine", "I hate the noise",
  "the quality is excellent", "the box was blue", "delivery was slow", "it stopped working",
}

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  workload = args[1] or "healthz"
  seed = tonumber(args[2] or "1")
  math.randomseed(seed * 1000 + thread_id)
end

local function pick(list)
  return list[math.random(#list)]
end

local function post(path, instance, headers)
  return wrk.format("POST", path, headers or HEADERS, '{"instances":[' .. instance .. ']}')
end

local function iris_cached()
  return post(IRIS, pick(HOT_IRIS))
end

local function iris_uncached(headers)
  counter = counter + 1
  -- the counter in the last digits keeps every flower of this thread distinct
  return post(IRIS, string.format("[%.3f%06d,%.6f,%.6f,%.6f]",
    4.3 + math.random() * 3.6, counter % 1000000,
    2.0 + math.random() * 2.4, 1.0 + math.random() * 5.9, 0.1 + math.random() * 2.4),
    headers)
end

local function sentiment_cached()
  return post(SENTIMENT, '"' .. pick(HOT_TEXT) .. '"')
end

local function sentiment_uncached()
  counter = counter + 1
  return post(SENTIMENT, string.format('"%s, %s (order %d-%d-%d)"',
    pick(OPENERS), pick(VERDICTS), seed, thread_id, counter))
end

-- the mixed profile mirrors the Locust mix: mostly hot iris, then cold iris, then sentiment
local function mixed()
  local r = math.random()
  if r < 0.35 then return iris_cached()
  elseif r < 0.60 then return iris_uncached()
  elseif r < 0.80 then return sentiment_cached()
  else return sentiment_uncached() end
end

local WORKLOADS = {
  ["iris-cached"] = iris_cached,
  ["iris-uncached"] = iris_uncached,
  ["iris-no-cache"] = function() return iris_uncached(NO_CACHE) end,
  ["sentiment-uncached"] = sentiment_uncached,
  ["mixed"] = mixed,
}

function request()
  local make = WORKLOADS[workload]
  if make == nil then
    return wrk.format("GET", "/healthz")
  end
  return make()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
