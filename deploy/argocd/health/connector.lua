-- Argo CD health check for roster.dev/Connector (resource.customizations.health.roster.dev_Connector).
-- Degraded: deprovisions held by the mass-change brake (DeprovisioningHeld True or
-- heldDeprovisions > 0; leavers keep access until someone approves), or Ready False with a failure
-- reason (e.g. Unreachable). Suspended: spec.paused, the roster.dev/paused annotation "true" or
-- the Paused condition True. Progressing: not yet observed for the current generation. Healthy:
-- Ready True (reachable and authenticated) for the current generation.
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

-- Held deprovisions come first: they need a person whatever else the Connector is doing.
local held = condition(status, "DeprovisioningHeld")
local heldTrue = held ~= nil and held.status == "True"
local heldCount = 0
if status ~= nil and type(status.heldDeprovisions) == "number" then
  heldCount = status.heldDeprovisions
end
if heldTrue or heldCount > 0 then
  hs.status = "Degraded"
  if heldTrue and text(held.message, nil) ~= nil then
    hs.message = "DeprovisioningHeld: " .. held.message
  elseif heldCount == 1 then
    hs.message = "DeprovisioningHeld: 1 deprovision waits for roster.dev/approve-deprovisioning"
  elseif heldCount > 1 then
    hs.message = "DeprovisioningHeld: " .. heldCount .. " deprovisions wait for roster.dev/approve-deprovisioning"
  else
    hs.message = "DeprovisioningHeld: deprovisions wait for roster.dev/approve-deprovisioning"
  end
  return hs
end

local paused = condition(status, "Paused")
local annotations = metadata.annotations
local pausedByAnnotation = type(annotations) == "table" and annotations["roster.dev/paused"] == "true"
local pausedBySpec = type(obj.spec) == "table" and obj.spec.paused == true
if pausedBySpec or pausedByAnnotation or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  if paused ~= nil and paused.status == "True" and text(paused.message, nil) ~= nil then
    hs.message = paused.message
  elseif pausedBySpec then
    hs.message = "spec.paused is true"
  elseif pausedByAnnotation then
    hs.message = 'roster.dev/paused is "true"'
  else
    hs.message = "paused"
  end
  return hs
end

local ready = condition(status, "Ready")
if status == nil or ready == nil or type(status.observedGeneration) ~= "number" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the Connector"
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
hs.message = text(ready.message, "Ready") .. ", " .. tostring(status.managedAccounts or 0) .. " managed accounts"
return hs
