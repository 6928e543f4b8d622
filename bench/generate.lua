-- wrk script for bench/closed_loop.py: POST a one-sentence /generate and count the answers by
-- status; done() prints "STATUS <code> <count>" lines and the latency percentiles in ms.
wrk.method = "POST"
wrk.body = '{"inputs": "", "parameters": {"num_sentences": 1, "max_new_tokens": 40, "do_sample": true}}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      total[code] = (total[code] or 0) + count
    end
  end
  for code, count in pairs(total) do
    io.write(string.format("STATUS %d %d\n", code, count))
  end
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("P%d %.3f\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("TIMEOUTS %d\n", summary.errors.timeout))
  io.write(string.format("SECONDS %.3f\n", summary.duration / 1e6))
end
