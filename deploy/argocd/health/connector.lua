-- Argo CD health check for roster.dev/Connector (resource.customizations.health.roster.dev_Connector).
-- Degraded: deprovisions held by the mass-change brake (DeprovisioningHeld True or
-- heldDeprovisions > 0; leavers keep access until someone approves), or Ready False with a failure
-- reason (e.g. Unreachable). Suspended: spec.paused or the roster.dev/paused annotation (Paused
-- condition True). Progressing: not yet observed for the current generation. Healthy: Ready True
-- (reachable and authenticated) for the current generation.
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- Reasons a Ready=False condition carries while work is still under way (not failures).
local transient = { Reconciling = true, Progressing = true, Pending = true, Waiting = true }

local generation = obj.metadata.generation or 0
local status = obj.status

-- Held deprovisions come first: they need a person whatever else the Connector is doing.
local held = condition(status, "DeprovisioningHeld")
local heldCount = 0
if status ~= nil and status.heldDeprovisions ~= nil then
  heldCount = status.heldDeprovisions
end
if (held ~= nil and held.status == "True") or heldCount > 0 then
  hs.status = "Degraded"
  if held ~= nil and held.status == "True" and held.message ~= nil and held.message ~= "" then
    hs.message = "DeprovisioningHeld: " .. held.message
  else
    hs.message = "DeprovisioningHeld: " .. heldCount .. " deprovisions wait for roster.dev/approve-deprovisioning"
  end
  return hs
end

local paused = condition(status, "Paused")
if (obj.spec ~= nil and obj.spec.paused == true) or (paused ~= nil and paused.status == "True") then
  hs.status = "Suspended"
  if paused ~= nil and paused.message ~= nil then
    hs.message = paused.message
  else
    hs.message = "spec.paused is true"
  end
  return hs
end

local ready = condition(status, "Ready")
if status == nil or ready == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the Connector"
  return hs
end
if status.observedGeneration < generation or (ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end

if ready.status == "False" and not transient[ready.reason or ""] then
  hs.status = "Degraded"
  hs.message = (ready.reason or "Failed") .. ": " .. (ready.message or "")
  return hs
end
if ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = ready.message or "Reconciling"
  return hs
end

hs.status = "Healthy"
hs.message = (ready.message or "Ready") .. ", " .. tostring(status.managedAccounts or 0) .. " managed accounts"
return hs
