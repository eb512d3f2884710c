-- Argo CD health check for streamhouse.io/StreamSource (a catalog declaration).
local hs = {}
local status = obj.status
local validated = nil
if status ~= nil and status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Validated" then
      validated = c
    end
  end
end
local generation = obj.metadata and obj.metadata.generation
if validated == nil or (generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the declaration"
  return hs
end
if validated.status == "True" then
  hs.status = "Healthy"
  hs.message = validated.message or "Valid"
else
  hs.status = "Degraded"
  hs.message = validated.message or "Invalid declaration"
end
return hs
