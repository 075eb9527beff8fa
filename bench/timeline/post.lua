-- Rotates the bearer tokens of the reader accounts over POST /api/v1/statuses, each post's text unique.
local tokens = {}
for line in io.lines(os.getenv("WT_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
local thread_offset = 0

function setup(thread)
  thread_offset = thread_offset + 1
  thread:set("offset", thread_offset)
end

function request()
  counter = counter + 1
  local token = tokens[((counter * 7 + (offset or 0) * 31) % #tokens) + 1]
  local body = string.format('{"status": "拼团进行中 %d-%d #双十一#"}', offset or 0, counter)
  return wrk.format("POST", "/api/v1/statuses", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
