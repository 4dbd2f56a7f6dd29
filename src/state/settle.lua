-- Settles reservations with what their calls spent, many at once (src/state/shared.rs queues
-- them and sends them in batches); the windows are begin.lua's.
--
-- KEYS: the subscriptions' windows the batch settles in, each once.
-- ARGV[1]: now, in milliseconds; then per reservation, five: the index of its key in KEYS,
--          the deployment whose own windows it reserved in ("" for none), the second and the
--          day it reserved in, and the difference (what was spent minus what was reserved).
--
-- A second still in its window is corrected (never below zero); one that has left it only
-- counts, in the current second, what was spent beyond the reservation. A call that ran past
-- midnight counts what it spent beyond its reservation today.

local now = tonumber(ARGV[1])
local sec = math.floor(now / 1000)
local today = math.floor(now / 86400000)

-- A minute's records are begin.lua's: 12 bytes each, the second and its count, oldest first.
local REC = 12

-- A minute with its `second` corrected by delta, and what its total changes by.
local function minute(blob, second, delta)
  if not blob then return nil, 0 end
  if second + 60 <= sec then
    if delta <= 0 then return blob, 0 end
    second = sec
  end
  -- Settlements are recent: look from the newest record back.
  local at = #blob + 1
  for i = #blob - REC + 1, 1, -REC do
    local s, count = struct.unpack('>I4d', blob, i)
    if s == second then
      local settled = math.max(0, count + delta)
      local before, after = string.sub(blob, 1, i - 1), string.sub(blob, i + REC)
      return before .. struct.pack('>I4d', s, settled) .. after, settled - count
    end
    if s < second then break end
    at = i
  end
  if delta <= 0 then return blob, 0 end
  return string.sub(blob, 1, at - 1) .. struct.pack('>I4d', second, delta) .. string.sub(blob, at), delta
end

local function day(scope, reserved, delta)
  local d = scope.d
  if not d then return end
  if reserved == today then
    if d[1] == today then
      local settled = d[2] + delta
      if settled < 0 then settled = 0 end
      d[2] = settled
    end
  elseif delta > 0 then
    if d[1] == today then d[2] = d[2] + delta else scope.d = { today, delta } end
  end
end

local states = {}
for i = 2, #ARGV, 5 do
  local k = tonumber(ARGV[i])
  local state = states[k]
  if state == nil then
    local raw = redis.call('GET', KEYS[k])
    state = raw and cmsgpack.unpack(raw) or false
    states[k] = state
  end
  if state then
    local second, reserved, delta = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    local scopes = { state[''] }
    if ARGV[i + 1] ~= '' then scopes[2] = state[ARGV[i + 1]] end
    for _, scope in pairs(scopes) do
      local blob, change = minute(scope.m, second, delta)
      scope.m = blob
      if scope.mt then scope.mt = math.max(0, scope.mt + change) end
      day(scope, reserved, delta)
    end
  end
end
for k, state in pairs(states) do
  if state then redis.call('SET', KEYS[k], cmsgpack.pack(state), 'PX', 2 * 86400000) end
end
return #KEYS
