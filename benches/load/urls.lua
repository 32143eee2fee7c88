-- wrk script: cycles through the hot set of BENCH_HOT URLs /BENCH_PATH/BENCH_SIZE?k=0..N-1 (BENCH_PATH: bytes by
-- default, html for the compression run), one after the other, with Accept-Encoding: BENCH_AE when it is set.
-- Requests are formatted once up front so the client spends its time on I/O, not on Lua string building.
local size = os.getenv("BENCH_SIZE") or "1024"
local hot = tonumber(os.getenv("BENCH_HOT") or "1000")
local path = os.getenv("BENCH_PATH") or "bytes"
local ae = os.getenv("BENCH_AE") or ""
local requests = {}
local n = 0

function init(args)
  -- wrk sets the Host header just before init, so the requests are formatted here, once per thread.
  for i = 0, hot - 1 do
    local headers = nil
    if ae ~= "" then headers = { ["Accept-Encoding"] = ae } end
    requests[i + 1] = wrk.format("GET", "/" .. path .. "/" .. size .. "?k=" .. i, headers)
  end
  -- Each wrk thread starts at a different offset so threads do not walk the set in lock-step.
  n = math.random(0, hot - 1)
end

function request()
  n = n % hot + 1
  return requests[n]
end
