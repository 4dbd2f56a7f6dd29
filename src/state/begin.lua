-- Begins a call with shared state, in one round trip: reserves its tokens and one request in
-- every limit window that applies, all checked before any is counted, and takes the next turn
-- of its rotation. See src/state/shared.rs, which calls it.
--
-- KEYS[1..6]: the windows: the subscription's tokens-per-minute, requests-per-minute and
--             day; the deployment's the same (a placeholder key where the call has no
--             such window: its limit is 0)
-- KEYS[7]:    the rotation (a placeholder key when there is no turn: no candidates)
-- ARGV[1]:    now, in milliseconds since the epoch; ARGV[2]: the call's tokens
-- ARGV[3..8]: the six windows' limits (0: none)
-- ARGV[9..]:  the rotation's candidates: name, weight, name, weight...
--
-- Returns {1, tokens left, requests left, chosen}: admitted (-1: that kind has no limit; ""
-- for no turn); or {0, the refusing window (1-6), its limit, wait in ms, tokens left,
-- requests left}.
--
-- A minute window is a hash of second -> count, seconds older than 60 dropped as it is read;
-- a day is a counter. Windows and rotations expire when idle.

local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local sec = math.floor(now / 1000)

local function minute(key)
  local raw = redis.call('HGETALL', key)
  local buckets, used = {}, 0
  for i = 1, #raw, 2 do
    local s, n = tonumber(raw[i]), tonumber(raw[i + 1])
    if s + 60 <= sec then
      redis.call('HDEL', key, raw[i])
    else
      buckets[#buckets + 1] = { s, n }
      used = used + n
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return buckets, used
end

-- Milliseconds until `cost` fits, or nil when it fits now; a cost above the limit fits an
-- empty window.
local function minute_wait(buckets, used, limit, cost)
  if cost > limit then cost = limit end
  if used + cost <= limit then return nil end
  local freed = 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if used - freed + cost <= limit then return (b[1] + 60) * 1000 - now end
  end
  return (sec + 60) * 1000 - now
end

local windows = {}
for i = 1, 6 do
  local key, limit = KEYS[i], tonumber(ARGV[2 + i])
  local kind = (i - 1) % 3 -- 0 tokens a minute, 1 requests a minute, 2 tokens a day
  local cost = tokens
  if kind == 1 then cost = 1 end
  -- A call that spends nothing of a window is not held to it, but still hears what is left.
  if limit > 0 then
    local w = { key = key, limit = limit, kind = kind, cost = math.min(cost, limit) }
    if kind == 2 then
      w.used = tonumber(redis.call('GET', key) or '0')
      if cost > 0 and w.used + w.cost > limit then
        w.wait = (math.floor(now / 86400000) + 1) * 86400000 - now
      end
    else
      w.buckets, w.used = minute(key)
      if cost > 0 then w.wait = minute_wait(w.buckets, w.used, limit, cost) end
    end
    windows[i] = w
  end
end

local function left(admitted)
  local tokens_left, requests_left = -1, -1
  for _, w in pairs(windows) do
    local rest = w.limit - w.used
    if admitted then rest = rest - w.cost end
    if rest < 0 then rest = 0 end
    if w.kind == 1 then
      if requests_left < 0 or rest < requests_left then requests_left = rest end
    elseif tokens_left < 0 or rest < tokens_left then
      tokens_left = rest
    end
  end
  return tokens_left, requests_left
end

local worst
for i = 1, 6 do
  local w = windows[i]
  if w and w.wait and (not worst or w.wait > windows[worst].wait) then worst = i end
end
if worst then
  local tokens_left, requests_left = left(false)
  return { 0, worst, windows[worst].limit, math.floor(windows[worst].wait), tokens_left, requests_left }
end

for _, w in pairs(windows) do
  if w.cost == 0 then
    -- nothing to count
  elseif w.kind == 2 then
    redis.call('INCRBY', w.key, w.cost)
    redis.call('PEXPIRE', w.key, 2 * 86400000)
  else
    redis.call('HINCRBY', w.key, sec, w.cost)
    redis.call('PEXPIRE', w.key, 120000)
  end
end
local tokens_left, requests_left = left(true)

-- Smooth weighted round-robin: each candidate gains its weight, the one with the most is
-- chosen and gives back the candidates' total.
local chosen = ''
if #ARGV >= 9 then
  local best, best_weight, total = nil, nil, 0
  for i = 9, #ARGV, 2 do
    local weight = tonumber(ARGV[i + 1])
    local current = redis.call('HINCRBY', KEYS[7], ARGV[i], weight)
    total = total + weight
    if not best or current > best_weight then best, best_weight = ARGV[i], current end
  end
  if best then
    redis.call('HINCRBY', KEYS[7], best, -total)
    redis.call('PEXPIRE', KEYS[7], 86400000)
    chosen = best
  end
end
return { 1, tokens_left, requests_left, chosen }
