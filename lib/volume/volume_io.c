/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Byte-granular I/O on the decrypted device.
 *
 * Reads: whole sectors are read straight into the caller's buffer and
 * decrypted in place; partial head/tail sectors go through the bounce
 * buffer.  Writes: plaintext is encrypted into the bounce buffer (the
 * caller's buffer is never modified) in chunks of BC_BOUNCE_SIZE; a partial
 * sector is read, decrypted, patched, re-encrypted and written back.
 *
 * Zero ciphertext reads as zeros: a sector whose ciphertext is all zero
 * bytes is not decrypted but read as all-zero plaintext (dm-crypt would
 * decrypt it into pseudo-random bytes).  The ciphertext of real data is
 * all zero with probability 2^-(8 * sector size), so the only such sectors
 * are areas never written, trimmed or deallocated, whose content dm-crypt
 * leaves unspecified; the rule depends on the backing's bytes alone (not
 * on allocation: copying the backing sparse or dense changes nothing), and
 * everything written through blockcrypt reads the same under dm-crypt.
 * Writes never produce it: zeros written (WRITE_ZEROES too) are encrypted.
 * The test on real ciphertext stops at its first nonzero word.
 *
 * Threading: any number of threads may call these at once.  Every write
 * holds an exclusive range lock on the sectors it touches for its whole
 * duration, so a read-modify-write can never lose a concurrent write to the
 * same sector, while writes to disjoint sectors proceed in parallel.  Reads
 * take no lock (a read racing a write may see either version of a sector,
 * as on any block device).
 */
#include <errno.h>
#include <string.h>

#include "core/error.h"
#include "core/macros.h"
#include "volume/volume_internal.h"

static int check_range(const struct bc_volume *v, uint64_t len, uint64_t off, int err)
{
	uint64_t size = bc_volume_size(v);

	if (off > size || len > size - off)
		return bci_error(err, "volume: range %llu+%llu is beyond the end (%llu bytes)",
				(unsigned long long)off, (unsigned long long)len, (unsigned long long)size);
	return 0;
}

static uint64_t backing_offset(const struct bc_volume *v, uint64_t sector)
{
	return v->info.data_offset + sector * v->sector_size;
}

/* Read and decrypt COUNT whole sectors into DST; sectors of zero
 * ciphertext stay zero (see the top of this file).  Runs of other sectors
 * are decrypted with one call each. */
static int read_sectors(struct bc_volume *v, struct bci_io_slot *s, uint8_t *dst,
			uint64_t sector, size_t count)
{
	const uint32_t ss = v->sector_size;
	size_t i = 0;
	int r = bci_backing_pread(v->backing, dst, count * ss, backing_offset(v, sector));

	while (r == 0 && i < count) {
		size_t j = i;

		while (j < count && !bci_all_zero(dst + j * ss, ss))
			j++;
		if (j > i)
			r = bci_sector_decrypt(s->engine, dst + i * ss, dst + i * ss, sector + i, j - i);
		i = j + 1; /* skip the zero sector that ended the run */
	}
	return r;
}

int bc_volume_pread(struct bc_volume *v, void *buf, size_t len, uint64_t off)
{
	const uint32_t ss = v->sector_size;
	struct bci_io_slot *s;
	uint8_t *p = buf;
	int r;

	r = check_range(v, len, off, -EINVAL);
	if (r < 0 || !len)
		return r;
	r = bci_volume_slot_get(v, &s);
	if (r < 0)
		return r;
	while (len) {
		uint64_t sector = off / ss;
		size_t in = (size_t)(off % ss);

		if (in || len < ss) {
			size_t n = ss - in < len ? ss - in : len;

			r = read_sectors(v, s, s->bounce, sector, 1);
			if (r < 0)
				break;
			memcpy(p, s->bounce + in, n);
			p += n;
			off += n;
			len -= n;
		} else {
			size_t count = len / ss;

			r = read_sectors(v, s, p, sector, count);
			if (r < 0)
				break;
			p += count * ss;
			off += (uint64_t)count * ss;
			len -= count * ss;
		}
	}
	bci_volume_slot_put(v, s);
	return r;
}

/* Write LEN bytes at OFF from BUF, or zeros when BUF is NULL.  With
 * IN_PLACE, whole sectors of BUF are encrypted where they are and written
 * in one call (BUF is the caller's scratch).  The caller holds the range
 * lock. */
static int write_locked(struct bc_volume *v, struct bci_io_slot *s, const uint8_t *buf,
			uint64_t len, uint64_t off, bool in_place)
{
	const uint32_t ss = v->sector_size;
	int r;

	while (len) {
		uint64_t sector = off / ss;
		size_t in = (size_t)(off % ss);
		const uint8_t *src;
		uint8_t *dst;
		size_t n, count;

		if (in || len < ss) {
			/* Read-modify-write of one partial sector. */
			n = ss - in < len ? ss - in : (size_t)len;
			r = read_sectors(v, s, s->bounce, sector, 1);
			if (r < 0)
				return r;
			if (buf)
				memcpy(s->bounce + in, buf, n);
			else
				memset(s->bounce + in, 0, n);
			count = 1;
			src = dst = s->bounce;
		} else if (in_place) {
			/* The caller's scratch buffer: encrypt it where it is. */
			count = (size_t)(len / ss);
			n = count * ss;
			src = dst = (uint8_t *)buf;
		} else {
			count = len / ss < BC_BOUNCE_SIZE / ss ? (size_t)(len / ss) : BC_BOUNCE_SIZE / ss;
			n = count * ss;
			dst = s->bounce;
			if (buf) {
				src = buf; /* encrypt straight from the caller's buffer: no copy */
			} else {
				memset(s->bounce, 0, n);
				src = s->bounce;
			}
		}
		r = bci_sector_encrypt(s->engine, dst, src, sector, count);
		if (r == 0)
			r = bci_backing_pwrite(v->backing, dst, count * ss, backing_offset(v, sector));
		if (r < 0)
			return r;
		if (buf)
			buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int write_common(struct bc_volume *v, const uint8_t *buf, uint64_t len, uint64_t off,
			bool in_place)
{
	struct bci_io_slot *s;
	uint64_t first, last;
	int r;

	if (v->info.read_only)
		return bci_error(-EROFS, "volume: opened read-only");
	r = check_range(v, len, off, -ENOSPC);
	if (r < 0 || !len)
		return r;
	first = off / v->sector_size;
	last = (off + len - 1) / v->sector_size;
	r = bci_volume_slot_get(v, &s);
	if (r < 0)
		return r;
	r = bci_range_lock(&v->write_lock, first, last);
	if (r == 0) {
		r = write_locked(v, s, buf, len, off, in_place);
		bci_range_unlock(&v->write_lock, first, last);
	}
	bci_volume_slot_put(v, s);
	return r;
}

int bc_volume_pwrite(struct bc_volume *v, const void *buf, size_t len, uint64_t off)
{
	return write_common(v, buf, len, off, false);
}

int bc_volume_pwrite_inplace(struct bc_volume *v, void *buf, size_t len, uint64_t off)
{
	return write_common(v, buf, len, off, true);
}

int bc_volume_write_zeroes(struct bc_volume *v, uint64_t len, uint64_t off)
{
	return write_common(v, NULL, len, off, false);
}

int bc_volume_flush(struct bc_volume *v)
{
	if (v->info.read_only)
		return 0;
	return bci_backing_flush(v->backing);
}

int bc_volume_discard(struct bc_volume *v, uint64_t len, uint64_t off)
{
	const uint32_t ss = v->sector_size;
	uint64_t first, end;
	int r;

	if (v->info.read_only)
		return bci_error(-EROFS, "volume: opened read-only");
	r = check_range(v, len, off, -ENOSPC);
	if (r < 0)
		return r;
	/* Only whole sectors can be discarded; partial ones are left as is. */
	first = (off + ss - 1) / ss;
	end = (off + len) / ss;
	if (end <= first)
		return 0;
	r = bci_range_lock(&v->write_lock, first, end - 1);
	if (r < 0)
		return r;
	r = bci_backing_discard(v->backing, (end - first) * ss, backing_offset(v, first));
	bci_range_unlock(&v->write_lock, first, end - 1);
	return r;
}

/* Where the backing holds whole sectors of holes (a partial hole is
 * data): the state of the sector holding OFF, and the volume offset
 * where that state ends (see bc_volume_extent). */
static void sector_extent(struct bc_volume *v, uint64_t off, bool *hole, uint64_t *end)
{
	const uint32_t ss = v->sector_size;
	const uint64_t doff = v->info.data_offset, start = off / ss * ss;
	uint64_t bend, vend;

	bci_backing_extent(v->backing, doff + start, hole, &bend);
	vend = bend - doff; /* bend > doff + start >= doff */
	if (*hole) {
		vend = vend / ss * ss; /* whole hole sectors only */
		if (vend > start) {
			*end = vend;
			return;
		}
		*hole = false; /* this sector is partly data */
		*end = start + ss;
		return;
	}
	*end = vend > UINT64_MAX - ss ? UINT64_MAX : (vend + ss - 1) / ss * ss;
}

int bc_volume_extent(struct bc_volume *v, uint64_t off, uint64_t max, uint64_t *len, bool *hole)
{
	uint64_t end;
	int r;

	r = check_range(v, max, off, -EINVAL);
	if (r < 0)
		return r;
	if (!max)
		return bci_error(-EINVAL, "volume: extent of an empty range");
	sector_extent(v, off, hole, &end);
	*len = end - off < max ? end - off : max;
	return 0;
}
