-- Argo CD health check for streamhouse.io/StreamQuery (resource.customizations.health).
-- Maps the operator's status to Argo CD's health: lifecycleState and the standard conditions.
local hs = {}
local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.lifecycleState == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile the query"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local state = status.lifecycleState
local degraded = condition(status, "Degraded")
local ready = condition(status, "Ready")
if state == "FAILED" then
  hs.status = "Degraded"
  if status.error ~= nil and status.error.message ~= nil then
    hs.message = status.error.message
  elseif degraded ~= nil then
    hs.message = degraded.message
  else
    hs.message = "The query failed"
  end
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.reason .. ": " .. (degraded.message or "")
  return hs
end
if state == "SUSPENDED" then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.state: suspended); state and offsets are kept"
  return hs
end
if state == "RUNNING" and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Running"
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = state .. ": " .. ready.message
else
  hs.message = state
end
return hs
