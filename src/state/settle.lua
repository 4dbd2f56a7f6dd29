-- Settles reservations with what their calls spent, many at once (src/state/shared.rs queues
-- them and sends them in batches).
--
-- KEYS: per reservation, 6 keys: the subscription's tokens-per-minute window, its day of the
--       reservation and its day of today; the same for the deployment. Where the call is not
--       held to a window, the placeholder key ARGV[2] stands in (every key is in the
--       prefix's cluster slot). A call that ran past midnight counts what it spent beyond its
--       reservation today.
-- ARGV[1]: now, in milliseconds; ARGV[2]: the placeholder key; then per reservation: the
--          second it reserved in, the day it reserved in, and the difference (what was spent
--          minus what was reserved).
--
-- A second still in its window is corrected (never below zero); one that has left it only
-- counts, in the current second, what was spent beyond the reservation.

local now = tonumber(ARGV[1])
local none = ARGV[2]
local sec = math.floor(now / 1000)
local today = math.floor(now / 86400000)

local function minute(key, second, delta)
  if key == none then return end
  if second + 60 > sec then
    local current = tonumber(redis.call('HGET', key, second) or '0')
    local settled = current + delta
    if settled < 0 then settled = 0 end
    redis.call('HSET', key, second, settled)
    redis.call('PEXPIRE', key, 120000)
  elseif delta > 0 then
    redis.call('HINCRBY', key, sec, delta)
    redis.call('PEXPIRE', key, 120000)
  end
end

local function day(key, key_today, reserved_day, delta)
  if key == none then return end
  if reserved_day == today then
    local settled = tonumber(redis.call('GET', key) or '0') + delta
    if settled < 0 then settled = 0 end
    redis.call('SET', key, settled, 'PX', 2 * 86400000)
  elseif delta > 0 then
    redis.call('INCRBY', key_today, delta)
    redis.call('PEXPIRE', key_today, 2 * 86400000)
  end
end

local n = (#ARGV - 2) / 3
for i = 0, n - 1 do
  local second = tonumber(ARGV[3 + i * 3])
  local reserved_day = tonumber(ARGV[4 + i * 3])
  local delta = tonumber(ARGV[5 + i * 3])
  local k = i * 6
  minute(KEYS[k + 1], second, delta)
  day(KEYS[k + 2], KEYS[k + 3], reserved_day, delta)
  minute(KEYS[k + 4], second, delta)
  day(KEYS[k + 5], KEYS[k + 6], reserved_day, delta)
end
return n
