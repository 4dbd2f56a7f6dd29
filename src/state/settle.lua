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

local function minute(list, second, delta)
  if not list then return end
  if second + 60 <= sec then
    if delta <= 0 then return end
    second = sec
  end
  -- The seconds are in order: find the reservation's, or where it goes.
  local at = #list + 1
  for i = 1, #list, 2 do
    if list[i] >= second then at = i break end
  end
  if list[at] == second then
    local settled = list[at + 1] + delta
    if settled < 0 then settled = 0 end
    list[at + 1] = settled
  elseif delta > 0 then
    table.insert(list, at, delta)
    table.insert(list, at, second)
  end
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
      minute(scope.m, second, delta)
      day(scope, reserved, delta)
    end
  end
end
for k, state in pairs(states) do
  if state then redis.call('SET', KEYS[k], cmsgpack.pack(state), 'PX', 2 * 86400000) end
end
return #KEYS
