/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The option list of options.h as data: what the command line's parser
 * (src/cli/cli.c), the tab parser (tab.c) and the fuzzers read. */
#include <stddef.h>

#include "options.h"

#define CFG(field) offsetof(struct attach_config, field)
#define CLI(field) BC_OPT_NO_FIELD
#define NONE BC_OPT_NO_FIELD
#define ROW(id, name_, arg_, kind_, min_, max_, field, commands_, tab_key_, help_) \
	[BC_OPT_##id] = { .name = name_, .arg = arg_, .tab_key = tab_key_, .help = help_, \
			  .kind = BC_KIND_##kind_, .min = min_, .max = max_, .cfg_offset = field, \
			  .commands = commands_ },

const struct opt_decl opt_decls[BC_OPT_COUNT] = { BC_OPTIONS(ROW) };

void *opt_cfg_field(const struct opt_decl *o, struct attach_config *c)
{
	return o->cfg_offset == BC_OPT_NO_FIELD ? NULL : (char *)c + o->cfg_offset;
}
