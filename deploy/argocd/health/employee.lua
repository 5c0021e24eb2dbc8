-- Argo CD health check for roster.dev/Employee (resource.customizations.health.roster.dev_Employee).
-- Healthy: Ready is True for the current generation. Progressing: not yet observed, being
-- reconciled or deprovisioned before deletion. Degraded: Ready False with a failure reason, or
-- phase Failed. Suspended: paused with the roster.dev/paused annotation (Paused condition True).
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
local transient = { Reconciling = true, Progressing = true, Pending = true, Provisioning = true, Deprovisioning = true, Waiting = true }

local generation = obj.metadata.generation or 0
local status = obj.status

local paused = condition(status, "Paused")
if paused ~= nil and paused.status == "True" then
  hs.status = "Suspended"
  hs.message = paused.message or "paused"
  return hs
end

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deprovisioning before deletion (finalizer roster.dev/deprovision)"
  return hs
end

local ready = condition(status, "Ready")
if status == nil or ready == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the Employee"
  return hs
end
if status.observedGeneration < generation or (ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end

if status.phase == "Failed" or (ready.status == "False" and not transient[ready.reason or ""]) then
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
hs.message = (status.phase or "Ready") .. ": " .. (ready.message or "")
local drifted = condition(status, "Drifted")
if drifted ~= nil and drifted.status == "True" then
  hs.message = hs.message .. " (drifted: " .. (drifted.message or "") .. ")"
end
return hs
