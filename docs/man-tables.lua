-- SPDX-License-Identifier: GPL-2.0-or-later
-- pandoc filter for the man pages (docs/meson.build): pandoc's man writer
-- gives a table with relative column widths 70 ens in all, plus tbl's 3
-- ens between columns, which overflows the 71 ens an 80-column terminal
-- leaves beside the man indent.  Scale the widths so the whole table fits.
local LINE = 71 -- ens: 78 (nroff line length) - 7 (indent)
local PANDOC = 70 -- ens pandoc's man writer gives a width of 1.0

function Table(t)
  local n, sum = #t.colspecs, 0
  for _, cs in ipairs(t.colspecs) do
    local w = cs[2]
    if type(w) ~= 'number' then
      return nil -- natural widths: tbl sizes the columns itself
    end
    sum = sum + w
  end
  if sum == 0 then
    return nil
  end
  local room = (LINE - 3 * (n - 1)) / PANDOC
  for i, cs in ipairs(t.colspecs) do
    t.colspecs[i] = {cs[1], cs[2] * room / sum * 0.98}
  end
  return t
end
