/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness: the blockcrypttab parser (src/attach/tab.c, blockcrypttab(5)).
 *
 * The input is the tab file.  Besides the sanitizers, it checks what the
 * rest of the tool relies on for every entry the parser accepts:
 *   - NAME is a valid attachment name and unique; BACKING and KEY are
 *     non-empty words without blanks; line numbers are increasing;
 *   - numbers are within the limits the parser promises; string options
 *     are non-empty; token_only is set exactly for KEY "token";
 *   - accepted entries plus reported errors never exceed the number of
 *     lines;
 *   - numbers were written as digits (SIZE: and a K/M/G/T suffix), as
 *     blockcrypttab(5) says: no sign, no blank before them;
 *   - round trip: the entry written back as one tab line parses to one
 *     entry with the same fields (every tab key of src/attach/options.h);
 *   - tab_to_config() maps it without surprises.
 * A failed check aborts with a message (libFuzzer keeps the input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach/runtime.h"
#include "attach/options.h"
#include "attach/tab.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_blank(const char *s)
{
	return strpbrk(s, " \t\n") != NULL;
}

static size_t count_lines(const uint8_t *data, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	return size && data[size - 1] != '\n' ? n + 1 : n;
}

/* Append ",KEY=VALUE" (or ",KEY") to the option list being written to M;
 * FIRST says whether it is the first option. */
static void add_opt(FILE *m, bool *first, const char *key, const char *value)
{
	fprintf(m, "%s%s%s%s", *first ? "" : ",", key, value ? "=" : "", value ? value : "");
	*first = false;
}

#define SAME_STR(a, b) (((a) == NULL && (b) == NULL) || ((a) && (b) && !strcmp((a), (b))))

static bool is_plain(const struct tab_entry *e)
{
	return e->cfg.type_set && e->cfg.type == BC_TYPE_PLAIN;
}

/* Option O of E's configuration as text for a tab line ("" for a flag
 * that is set), or NULL when absent; NUM is the buffer for numbers. */
static const char *opt_text(const struct tab_entry *e, const struct opt_decl *o, char num[24])
{
	struct attach_config *c = (struct attach_config *)&e->cfg;
	void *f = opt_cfg_field(o, c);
	uint64_t v = 0;

	switch (o->kind) {
	case BC_KIND_FLAG:
		return (f ? *(bool *)f : is_plain(e)) ? "" : NULL;
	case BC_KIND_STRING:
		return *(const char **)f;
	case BC_KIND_U32:
		v = *(uint32_t *)f;
		break;
	case BC_KIND_U64:
	case BC_KIND_SIZE:
		v = *(uint64_t *)f;
		break;
	case BC_KIND_SPECIAL:
		return NULL;
	}
	if (!v)
		return NULL; /* 0 is what an absent option gives */
	snprintf(num, 24, "%llu", (unsigned long long)v);
	return num;
}

static void check_same(const struct tab_entry *a, const struct tab_entry *b)
{
	FUZZ_CHECK(SAME_STR(a->name, b->name) && SAME_STR(a->backing, b->backing) && SAME_STR(a->key, b->key),
		   "round trip changed NAME, BACKING or KEY of '%s'", a->name);
	FUZZ_CHECK(a->cfg.token_only == b->cfg.token_only && is_plain(a) == is_plain(b),
		   "round trip changed token_only or plain of '%s'", a->name);
	for (size_t i = 0; i < BC_OPT_COUNT; i++) {
		char na[24], nb[24];

		if (!opt_decls[i].tab_key)
			continue;
		FUZZ_CHECK(SAME_STR(opt_text(a, &opt_decls[i], na), opt_text(b, &opt_decls[i], nb)),
			   "round trip changed %s of '%s'", opt_decls[i].tab_key, a->name);
	}
}

/* Write E back as one tab line and parse that. */
static void round_trip(const struct tab_entry *e)
{
	struct tab_entry *again = NULL;
	char *line = NULL;
	size_t len = 0, n = 0;
	bool first = true;
	int errors = 0, r;
	FILE *m = open_memstream(&line, &len);

	FUZZ_CHECK(m, "open_memstream failed");
	fprintf(m, "%s\t%s  %s ", e->name, e->backing, e->key);
	for (size_t i = 0; i < BC_OPT_COUNT; i++) {
		const struct opt_decl *o = &opt_decls[i];
		char num[24];
		const char *v;

		/* after-attach= takes the rest of the line: last */
		if (!o->tab_key || i == BC_OPT_AFTER_ATTACH || i == BC_OPT_READONLY)
			continue;
		v = opt_text(e, o, num);
		if (v)
			add_opt(m, &first, o->tab_key, *v || o->kind != BC_KIND_FLAG ? v : NULL);
	}
	if (e->cfg.after_attach)
		add_opt(m, &first, "after-attach", e->cfg.after_attach);
	fputc('\n', m);
	FUZZ_CHECK(fclose(m) == 0, "open_memstream: out of memory");

	r = tab_parse(line, len, "round-trip", NULL, &again, &n, &errors);
	FUZZ_CHECK(r == 0, "tab_parse failed on the round trip line: %d", r);
	FUZZ_CHECK(n == 1 && errors == 0, "round trip line of '%s' gave %zu entries and %d errors: %s",
		   e->name, n, errors, line);
	check_same(e, &again[0]);
	tab_free(again, n);
	free(line);
}

/* Line LINE (from 1) of the input as the parser saw it: up to '\n', less
 * one '\r' before it (CRLF); a line holding a NUL is refused. */
static char *line_text(const uint8_t *data, size_t size, int line)
{
	size_t i = 0, end;
	const uint8_t *nl;

	for (int l = 1; l < line; l++) {
		nl = memchr(data + i, '\n', size - i);
		FUZZ_CHECK(nl, "entry on line %d, but the input has fewer lines", line);
		i = (size_t)(nl - data) + 1;
	}
	nl = memchr(data + i, '\n', size - i);
	end = nl ? (size_t)(nl - data) : size;
	FUZZ_CHECK(!memchr(data + i, '\0', end - i), "accepted line %d, which holds a NUL byte", line);
	if (end > i && data[end - 1] == '\r')
		end--;
	return strndup((const char *)data + i, end - i);
}

/* blockcrypttab(5): numbers are decimal digits, SIZE with an optional
 * K/M/G/T, itself optionally followed by "iB" or "B" (as --size takes
 * them); an accepted line must not have anything else there. */
static void check_number_text(const uint8_t *data, size_t size, const struct tab_entry *e)
{
	static const char *const keys[] = { "key-size=", "sector-size=", "threads=", "size=", "offset=", "skip=" };
	char *text = line_text(data, size, e->line), *p = text, *hook, *tok, *save = NULL;

	FUZZ_CHECK(text, "out of memory");
	for (int field = 0; field < 3; field++) { /* NAME BACKING KEY */
		p += strspn(p, " \t");
		p += strcspn(p, " \t");
	}
	p += strspn(p, " \t");
	hook = strstr(p, "after-attach=");
	if (hook && (hook == p || hook[-1] == ','))
		*hook = '\0';
	for (tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			size_t n = strlen(keys[k]), digits;
			const char *v = tok + n;

			if (strncmp(tok, keys[k], n))
				continue;
			digits = strspn(v, "0123456789");
			if (!strcmp(keys[k], "size=") && digits && v[digits] && strchr("kKmMgGtT", v[digits])) {
				digits++;
				if (!strncmp(v + digits, "iB", 2))
					digits += 2;
				else if (v[digits] == 'B')
					digits++;
			}
			FUZZ_CHECK(digits && !v[digits + strspn(v + digits, " \t")],
				   "line %d of '%s': accepted the number in '%s'", e->line, e->name, tok);
		}
	}
	free(text);
}

static void check_entry(const struct tab_entry *all, size_t count, size_t i)
{
	const struct tab_entry *e = &all[i];
	struct attach_config c;

	FUZZ_CHECK(e->name && e->backing && e->key, "entry %zu lacks NAME, BACKING or KEY", i);
	FUZZ_CHECK(rt_valid_name(e->name) == 0, "accepted an invalid name '%s'", e->name);
	FUZZ_CHECK(tab_find(all, count, e->name) == e, "name '%s' is not unique", e->name);
	FUZZ_CHECK(*e->backing && *e->key && !has_blank(e->backing) && !has_blank(e->key),
		   "BACKING or KEY of '%s' is empty or holds a blank", e->name);
	FUZZ_CHECK(e->line >= 1 && (i == 0 || e->line > all[i - 1].line), "bad line number %d", e->line);
	FUZZ_CHECK(e->cfg.token_only == !strcmp(e->key, "token"), "token_only wrong for KEY '%s'", e->key);
	for (size_t k = 0; k < BC_OPT_COUNT; k++) {
		const struct opt_decl *o = &opt_decls[k];
		const void *f = opt_cfg_field(o, (struct attach_config *)&e->cfg);
		uint64_t v;

		if (!o->tab_key || !f)
			continue;
		if (o->kind == BC_KIND_STRING) {
			const char *s = *(const char *const *)f;

			FUZZ_CHECK(!s || (*s && !strchr(s, '\n')), "empty value or newline in %s of '%s'",
				   o->tab_key, e->name);
			continue;
		}
		if (o->kind != BC_KIND_U32 && o->kind != BC_KIND_U64 && o->kind != BC_KIND_SIZE)
			continue;
		v = o->kind == BC_KIND_U32 ? *(const uint32_t *)f : *(const uint64_t *)f;
		/* 0: absent (a MIN above 0 makes an explicit 0 an error) */
		FUZZ_CHECK((v == 0 || v >= o->min) && v <= o->max, "%s of '%s' is beyond its limits",
			   o->tab_key, e->name);
	}
	tab_to_config(e, &c);
	FUZZ_CHECK(c.name == e->name && c.threads == e->cfg.threads && c.read_only == e->cfg.read_only,
		   "tab_to_config lost NAME, threads or read-only of '%s'", e->name);
	FUZZ_CHECK(is_plain(e) == (c.type_set && c.type == BC_TYPE_PLAIN), "tab_to_config: plain of '%s'", e->name);
	FUZZ_CHECK(!c.key_file || c.key_file == e->key, "tab_to_config: key file of '%s'", e->name);
	/* Plain options without a type: plain unless the backing is LUKS,
	 * decided when opening (c.plain_fallback). */
	FUZZ_CHECK(is_plain(e) || c.plain_fallback || (!c.offset && !c.size && (!c.cipher || c.type == BC_TYPE_LOFI)),
		   "tab_to_config: layout of LUKS '%s'", e->name);
	FUZZ_CHECK(!c.plain_fallback || (!e->cfg.type_set && !e->cfg.header), "tab_to_config: fallback of '%s'",
		   e->name);
	round_trip(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tab_entry *e = NULL;
	size_t n = 0;
	int errors = 0, r;

	r = tab_parse((const char *)data, size, "fuzz.tab", NULL, &e, &n, &errors);
	FUZZ_CHECK(r == 0, "tab_parse failed: %d", r);
	FUZZ_CHECK(errors >= 0 && n + (size_t)errors <= count_lines(data, size),
		   "%zu entries and %d errors from %zu lines", n, errors, count_lines(data, size));
	FUZZ_CHECK(n == 0 || e, "entries counted but none returned");
	for (size_t i = 0; i < n; i++) {
		check_entry(e, n, i);
		check_number_text(data, size, &e[i]);
	}
	tab_free(e, n);
	return 0;
}
