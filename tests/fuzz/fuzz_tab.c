/*
 * libFuzzer harness: the blockcrypttab parser (src/tab.c, blockcrypttab(5)).
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
 *     entry with the same fields;
 * A failed check aborts with a message (libFuzzer keeps the input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach/runtime.h"
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

static void add_num(FILE *m, bool *first, const char *key, uint64_t v)
{
	char num[24];

	if (!v)
		return; /* 0 is what an absent option gives */
	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	add_opt(m, first, key, num);
}

#define SAME_STR(a, b) (((a) == NULL && (b) == NULL) || ((a) && (b) && !strcmp((a), (b))))

static void check_same(const struct tab_entry *a, const struct tab_entry *b)
{
	FUZZ_CHECK(SAME_STR(a->name, b->name) && SAME_STR(a->backing, b->backing) && SAME_STR(a->key, b->key),
		   "round trip changed NAME, BACKING or KEY of '%s'", a->name);
	FUZZ_CHECK(SAME_STR(a->fuse_dir, b->fuse_dir) && SAME_STR(a->socket, b->socket) &&
		   SAME_STR(a->listen, b->listen) && SAME_STR(a->cipher, b->cipher) &&
		   SAME_STR(a->hash, b->hash) && SAME_STR(a->pin_file, b->pin_file) &&
		   SAME_STR(a->module, b->module) && SAME_STR(a->after_attach, b->after_attach) &&
		   SAME_STR(a->tls_certificates, b->tls_certificates) && SAME_STR(a->tls_psk, b->tls_psk),
		   "round trip changed a string option of '%s'", a->name);
	FUZZ_CHECK(a->read_only == b->read_only && a->discard == b->discard && a->plain == b->plain &&
		   a->noauto == b->noauto && a->token_only == b->token_only &&
		   a->tls_verify_peer == b->tls_verify_peer && a->insecure == b->insecure,
		   "round trip changed a flag of '%s'", a->name);
	FUZZ_CHECK(a->key_bits == b->key_bits && a->sector_size == b->sector_size &&
		   a->threads == b->threads && a->size == b->size && a->offset == b->offset &&
		   a->skip == b->skip, "round trip changed a number of '%s'", a->name);
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
	{
		const struct { const char *key, *val; } strs[] = {
			{ "fuse", e->fuse_dir }, { "socket", e->socket }, { "listen", e->listen },
			{ "cipher", e->cipher }, { "hash", e->hash }, { "pin-file", e->pin_file },
			{ "module", e->module }, { "tls-certificates", e->tls_certificates },
			{ "tls-psk", e->tls_psk },
		};
		const struct { const char *key; bool on; } flags[] = {
			{ "tls-verify-peer", e->tls_verify_peer }, { "insecure", e->insecure },
			{ "read-only", e->read_only }, { "discard", e->discard },
			{ "plain", e->plain }, { "noauto", e->noauto },
		};

		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
			if (strs[i].val)
				add_opt(m, &first, strs[i].key, strs[i].val);
		for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (flags[i].on)
				add_opt(m, &first, flags[i].key, NULL);
	}
	add_num(m, &first, "key-size", e->key_bits);
	add_num(m, &first, "sector-size", e->sector_size);
	add_num(m, &first, "threads", e->threads);
	add_num(m, &first, "size", e->size);
	add_num(m, &first, "offset", e->offset);
	add_num(m, &first, "skip", e->skip);
	if (e->after_attach)
		add_opt(m, &first, "after-attach", e->after_attach);
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

	FUZZ_CHECK(e->name && e->backing && e->key, "entry %zu lacks NAME, BACKING or KEY", i);
	FUZZ_CHECK(rt_valid_name(e->name) == 0, "accepted an invalid name '%s'", e->name);
	FUZZ_CHECK(tab_find(all, count, e->name) == e, "name '%s' is not unique", e->name);
	FUZZ_CHECK(*e->backing && *e->key && !has_blank(e->backing) && !has_blank(e->key),
		   "BACKING or KEY of '%s' is empty or holds a blank", e->name);
	FUZZ_CHECK(e->line >= 1 && (i == 0 || e->line > all[i - 1].line), "bad line number %d", e->line);
	FUZZ_CHECK(e->key_bits <= 4096 && e->sector_size <= 4096 && e->threads <= 256 &&
		   e->offset <= UINT64_MAX / 512, "a number of '%s' is beyond its limit", e->name);
	FUZZ_CHECK(e->token_only == !strcmp(e->key, "token"), "token_only wrong for KEY '%s'", e->key);
	{
		const char *strs[] = { e->fuse_dir, e->socket, e->listen, e->cipher, e->hash,
				       e->pin_file, e->module, e->after_attach, e->tls_certificates,
				       e->tls_psk };

		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			FUZZ_CHECK(!strs[k] || (*strs[k] && !strchr(strs[k], '\n')),
				   "empty option value or newline in '%s'", e->name);
	}
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
