-- Begins a call with shared state, in one round trip: reserves its tokens and one request in
-- every limit window that applies, all checked before any is counted, and takes the next turn
-- of its rotation. See src/state/shared.rs, which calls it, and src/limits/window.rs, whose
-- windows these are.
--
-- KEYS[1]: the subscription's windows; KEYS[2]: the rotation. Either may be the placeholder
--          key, never read: the call reserves nothing (no limits) or takes no turn (no
--          candidates).
-- ARGV[1]: now, in milliseconds since the epoch; ARGV[2]: the call's tokens
-- ARGV[3..8]: the limits of the six windows: the subscription's tokens a minute, requests a
--          minute and tokens a day, then the deployment's (0: no such window)
-- ARGV[9]: the deployment whose windows ARGV[6..8] are ("" for none)
-- ARGV[10]: "begin", or "peek": only read what is left, count nothing and take no turn
-- ARGV[11..]: the rotation's candidates: name, weight, name, weight...
--
-- Returns {1, tokens left, requests left, chosen}: admitted (-1: that kind has no limit; ""
-- for no turn; a peek says what is left before any call); or {0, the refusing window (1-6),
-- its limit, wait in ms, tokens left, requests left}. src/state/begin.rs reads it.
--
-- Each key is one MessagePack value, read with one GET and written with one SET: Redis
-- commands are what a script spends its time on. A subscription's windows are a map from
-- scope ("" for its own, else a deployment's name) to {m = tokens a minute, mt = their total,
-- r = requests a minute, rt = their total, d = {day, tokens}}. A rotation is a map from backend to its current weight.

local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local sec = math.floor(now / 1000)
local today = math.floor(now / 86400000)
local DAY_MS = 86400000

-- A minute is a string of 12-byte records, one per second that counted something, oldest
-- first: the second (4 bytes) and its count (a double), so that a call reads and writes the
-- string whole and touches only the records at its ends. Its total is kept beside it.
local REC = 12

-- A minute's records still in the window, and their total.
local function minute(blob, total)
  blob = blob or ''
  if not total then
    total = 0
    for i = 1, #blob, REC do total = total + select(2, struct.unpack('>I4d', blob, i)) end
  end
  local first = 1
  while first <= #blob do
    local second, count = struct.unpack('>I4d', blob, first)
    if second + 60 > sec then break end
    total = total - count
    first = first + REC
  end
  if first > 1 then blob = string.sub(blob, first) end
  if total < 0 then total = 0 end
  return blob, total
end

-- Milliseconds until `cost` fits, or nil when it fits now.
local function minute_wait(blob, used, limit, cost)
  if used + cost <= limit then return nil end
  local freed = 0
  for i = 1, #blob, REC do
    local second, count = struct.unpack('>I4d', blob, i)
    freed = freed + count
    if used - freed + cost <= limit then return (second + 60) * 1000 - now end
  end
  return (sec + 60) * 1000 - now
end

-- The minute with `cost` counted in the current second.
local function minute_add(blob, cost)
  local n = #blob
  if n >= REC then
    local second, count = struct.unpack('>I4d', blob, n - REC + 1)
    if second == sec then
      return string.sub(blob, 1, n - REC) .. struct.pack('>I4d', sec, count + cost)
    end
  end
  return blob .. struct.pack('>I4d', sec, cost)
end

local state, windows = nil, {}
local held = false
for i = 3, 8 do held = held or tonumber(ARGV[i]) > 0 end
if held then
  local raw = redis.call('GET', KEYS[1])
  state = raw and cmsgpack.unpack(raw) or {}
  for i = 1, 6 do
    local limit = tonumber(ARGV[2 + i])
    local scope = ''
    if i > 3 then scope = ARGV[9] end
    if limit > 0 then
      local s = state[scope] or {}
      state[scope] = s
      local kind = (i - 1) % 3 -- 0 tokens a minute, 1 requests a minute, 2 tokens a day
      local cost = tokens
      if kind == 1 then cost = 1 end
      -- A cost above the limit fits an empty window.
      local w = { limit = limit, kind = kind, cost = math.min(cost, limit), scope = s }
      if kind == 2 then
        local d = s.d
        w.used = 0
        if d and d[1] == today then w.used = d[2] end
        if w.cost > 0 and w.used + w.cost > limit then
          w.wait = (today + 1) * DAY_MS - now
        end
      else
        local field = kind == 0 and 'm' or 'r'
        w.field = field
        w.list, w.used = minute(s[field], s[field .. 't'])
        if w.cost > 0 then w.wait = minute_wait(w.list, w.used, limit, w.cost) end
      end
      windows[i] = w
    end
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

if ARGV[10] == 'peek' then
  local tokens_left, requests_left = left(false)
  return { 1, tokens_left, requests_left, '' }
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

if state then
  for _, w in pairs(windows) do
    if w.kind == 2 then
      w.scope.d = { today, w.used + w.cost }
    else
      local list = w.list
      if w.cost > 0 then list = minute_add(list, w.cost) end
      w.scope[w.field] = list
      w.scope[w.field .. 't'] = w.used + w.cost
    end
  end
  redis.call('SET', KEYS[1], cmsgpack.pack(state), 'PX', 2 * DAY_MS)
end
local tokens_left, requests_left = left(true)

-- Smooth weighted round-robin: each candidate gains its weight, the one with the most is
-- chosen and gives back the candidates' total. Backends no longer among the candidates keep
-- their weight, for when they are again.
local chosen = ''
if #ARGV >= 12 then
  local raw = redis.call('GET', KEYS[2])
  local current = raw and cmsgpack.unpack(raw) or {}
  local best, total = nil, 0
  for i = 11, #ARGV, 2 do
    local name, weight = ARGV[i], tonumber(ARGV[i + 1])
    current[name] = (current[name] or 0) + weight
    total = total + weight
    if not best or current[name] > current[best] then best = name end
  end
  current[best] = current[best] - total
  redis.call('SET', KEYS[2], cmsgpack.pack(current), 'PX', DAY_MS)
  chosen = best
end
return { 1, tokens_left, requests_left, chosen }
