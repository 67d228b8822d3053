/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The tab file (/etc/blockcrypttab, see blockcrypttab(5) in
 * docs/blockcrypttab.5.md): one volume per line, like crypttab(5). */
#ifndef BC_TAB_H
#define BC_TAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#define TAB_DEFAULT "/etc/blockcrypttab"

struct tab_entry {
	char *name, *backing, *key;
	/* The options, as given (strings owned by the entry); what attach
	 * gets is tab_to_config()'s. */
	struct attach_config cfg;
	int line;
	int unknown_options;     /* options ignored as unknown */
};

/* Parse FILE.  Lines with errors are reported on stderr as FILE:LINE:
 * message and skipped; *ERRORS counts them.  Returns -errno if the file
 * cannot be read. */
int tab_read(const char *file, struct tab_entry **entries, size_t *count, int *errors);
/* The same for the LEN bytes at BUF (which need no NUL terminator), as if
 * they were the contents of FILE; messages go to MSGS (NULL: nowhere).
 * Used by the fuzz harness (tests/fuzz/fuzz_tab.c). */
int tab_parse(const char *buf, size_t len, const char *file, FILE *msgs,
	      struct tab_entry **entries, size_t *count, int *errors);
void tab_free(struct tab_entry *entries, size_t count);
const struct tab_entry *tab_find(const struct tab_entry *e, size_t count, const char *name);
/* The configuration that attaching E asks for: its options, its name,
 * the key its KEY column names, and the layout options only for a plain
 * volume (a LUKS volume's come from its header).  Points into E. */
void tab_to_config(const struct tab_entry *e, struct attach_config *c);

#endif
