-- Rotates the bearer tokens of the reader accounts over GET /api/v1/timelines/home?limit=20.
local tokens = {}
for line in io.lines(os.getenv("WT_TOKENS")) do tokens[#tokens + 1] = line end
local counter = 0
local thread_offset = 0

function setup(thread)
  thread_offset = thread_offset + 97
  thread:set("offset", thread_offset)
end

function request()
  counter = counter + 1
  local token = tokens[((counter + (offset or 0)) % #tokens) + 1]
  return wrk.format("GET", "/api/v1/timelines/home?limit=20", { ["Authorization"] = "Bearer " .. token })
end
