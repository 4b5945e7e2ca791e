-- wrk script of `make bench-policy-server`: POSTs the AdmissionReview in the file given after
-- `--` and prints, when the run is done, one JSON line with what e2e-tests/bench_policy_server.py
-- reads. A response other than 2xx counts in "status_errors" (the benchmark refuses such a run).

local body_path = nil

function init(args)
  body_path = args[1]
  local file = assert(io.open(body_path, "rb"), "cannot open " .. tostring(body_path))
  local body = file:read("*a")
  file:close()
  local prepared = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
  request = function()
    return prepared
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
      '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
