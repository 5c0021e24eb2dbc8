-- Argo CD health check for roster.dev/GroupRule (resource.customizations.health.roster.dev_GroupRule).
-- Healthy: Ready is True for the current generation. Progressing: not yet observed for the current
-- generation. Degraded: Ready False with a failure reason (e.g. InvalidMatch). Suspended: the
-- roster.dev/paused annotation is "true" (or the Paused condition is True): it keeps what it
-- granted and grants nothing new.
-- Argo CD runs this with Lua's base functions and the table library only: no string or math
-- library, and no methods on strings (s:len()).
local hs = {}

local function condition(status, name)
  if type(status) ~= "table" or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == name then
      return c
    end
  end
  return nil
end

local function text(value, default)
  if type(value) == "string" and value ~= "" then
    return value
  end
  return default
end

-- Reasons a Ready=False condition carries while work is still under way (not failures).
local transient = { Reconciling = true, Progressing = true, Pending = true, Waiting = true }

local metadata = obj.metadata or {}
local generation = metadata.generation or 0
local status = obj.status
if type(status) ~= "table" then
  status = nil
end

local paused = condition(status, "Paused")
local annotations = metadata.annotations
local pausedByAnnotation = type(annotations) == "table" and annotations["roster.dev/paused"] == "true"
if pausedByAnnotation or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  if paused ~= nil and paused.status == "True" then
    hs.message = text(paused.message, "paused")
  else
    hs.message = 'roster.dev/paused is "true": grants nothing new'
  end
  return hs
end

local ready = condition(status, "Ready")
if status == nil or ready == nil or type(status.observedGeneration) ~= "number" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the GroupRule"
  return hs
end
if status.observedGeneration < generation or (type(ready.observedGeneration) == "number" and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end

if ready.status == "False" and not transient[ready.reason or ""] then
  hs.status = "Degraded"
  hs.message = text(ready.reason, "Failed") .. ": " .. text(ready.message, "")
  return hs
end
if ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = text(ready.message, "Reconciling")
  return hs
end

hs.status = "Healthy"
hs.message = tostring(status.memberCount or 0) .. " members"
return hs
