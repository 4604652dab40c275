-- json_same.lua: a function for scripts that filter by JSON values; a script includes it with a
-- line `--@include json_same` (sluice.scripts expands it).
--
-- same(a, b) is true when two cjson-decoded values are equal: numbers, strings and booleans by
-- value, tables key by key (nested), a missing key equal to JSON null.
local function same(a, b)
  if a == nil then
    a = cjson.null
  end
  if b == nil then
    b = cjson.null
  end
  if type(a) ~= type(b) then
    return false
  end
  if type(a) ~= 'table' then
    return a == b
  end
  for k, v in pairs(a) do
    if not same(v, b[k]) then
      return false
    end
  end
  for k, v in pairs(b) do
    if a[k] == nil and v ~= cjson.null then
      return false
    end
  end
  return true
end
