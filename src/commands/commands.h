/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The subcommand handlers, one per file in this folder; main.c's table
 * dispatches to them.  Each takes the parsed options and returns a
 * negative errno (the message set with bc_set_error) or 0. */
#ifndef BC_COMMANDS_H
#define BC_COMMANDS_H

#include "cli/cli.h"

int cmd_format(struct cli_opts *o);
int cmd_add_key(struct cli_opts *o);
int cmd_remove_key(struct cli_opts *o);
int cmd_change_key(struct cli_opts *o);
int cmd_dump(struct cli_opts *o);
int cmd_header_backup(struct cli_opts *o);
int cmd_header_restore(struct cli_opts *o);
int cmd_repair(struct cli_opts *o);
int cmd_erase(struct cli_opts *o);
int cmd_cat(struct cli_opts *o);
int cmd_write(struct cli_opts *o);
int cmd_attach(struct cli_opts *o);
int cmd_detach(struct cli_opts *o);
int cmd_list(struct cli_opts *o);
int cmd_status(struct cli_opts *o);
int cmd_genkey(struct cli_opts *o);
int cmd_resize(struct cli_opts *o);
int cmd_enroll(struct cli_opts *o);
int cmd_unenroll(struct cli_opts *o);

#endif
