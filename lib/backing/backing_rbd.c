/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backings that are a Ceph RBD image, through librbd:
 *
 *   rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:conf=PATH][:id=USER][:keyring=PATH]
 *
 * (qemu's spelling; a ':' or '\' inside a field is written '\:' / '\\').
 * Without conf= the cluster is found as every Ceph client finds it
 * ($CEPH_CONF, /etc/ceph/ceph.conf), and CEPH_ARGS is honoured.
 *
 * One process opens an image once: every backing, lock and staged header
 * of one image in this process shares one connection and one image handle
 * (struct rbd_image_ref, refcounted, in a process-wide list).  This is not
 * only thrift: the RBD exclusive lock belongs to a client, so a second
 * handle of our own would fight the first for it.
 *
 * One writer in the cluster: nothing is written to an image unless this
 * process holds its exclusive lock, taken explicitly with
 * rbd_lock_acquire() (bci_rbd_lock()).  A plain write would make librbd
 * take the lock on its own, quietly moving it from another writer -- two
 * writers, each believing it is alone.  With the lock held explicitly,
 * another client's attempt fails at once (EROFS from librbd), and it is
 * told who holds it: the owner's Ceph client name and, from the image's
 * metadata, the host and pid that took it.  Taking over from a dead holder
 * (bc_rbd_set_break_lock) breaks its lock, which blocklists it in the
 * cluster: should it come back, its writes fail -- fencing by Ceph.
 *
 * Timeouts: a cluster that is unreachable or full must give an error, not
 * a hang.  Ceph's defaults wait forever for an OSD or monitor operation,
 * so where the configuration leaves rados_osd_op_timeout or
 * rados_mon_op_timeout at 0 (forever), they are set to
 * BC_RBD_DEFAULT_TIMEOUT; client_mount_timeout keeps its own bounded
 * default.  All three can be set in ceph.conf or CEPH_ARGS.
 *
 * fork(): librados runs threads, and a child gets none of them -- nor
 * the locks they may hold at that instant.  bc_rbd_before_fork() releases
 * the image locks and shuts every client down (threads joined); after
 * fork() the child calls bc_rbd_after_fork_child(), which connects anew,
 * reopens every image and takes the locks again, and the parent only
 * closes what it had (its I/O fails with ENOTCONN).
 *
 * Threading: I/O operations may run from any number of threads at once
 * (librbd is thread-safe; each waits on its own completion); the list of
 * images is guarded by images_lock; fork handling runs with no other
 * thread using the backing.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "backing/backing.h"
#include "core/error.h"
#include "core/macros.h"

/* Seconds for an OSD or monitor operation when the configuration says
 * "forever". */
#define BC_RBD_DEFAULT_TIMEOUT "60"
#define HOLDER_KEY "blockcrypt.holder"

struct rbd_spec {
	char *pool, *ns, *image, *snap, *conf, *id, *keyring;
};

struct rbd_image_ref {
	struct rbd_image_ref *next;
	char *key;           /* the canonical spec: who shares this */
	struct rbd_spec spec;
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t image;
	unsigned refs;
	unsigned lock_refs;  /* holders of the exclusive lock among refs */
	bool locked;         /* this client holds the exclusive lock */
	bool relock;         /* held before fork(): the child takes it again */
};

struct rbd_backing {
	struct bci_backing b;
	struct rbd_image_ref *ref;
	bool holds_lock;
};

static pthread_mutex_t images_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rbd_image_ref *images;
static bool break_lock;

bool bc_backing_is_rbd(const char *path)
{
	return path && !strncmp(path, "rbd:", 4);
}

void bc_rbd_set_break_lock(bool on)
{
	break_lock = on;
}

static void spec_free(struct rbd_spec *s)
{
	free(s->pool);
	free(s->ns);
	free(s->image);
	free(s->snap);
	free(s->conf);
	free(s->id);
	free(s->keyring);
	memset(s, 0, sizeof(*s));
}

/* The next ':'-separated field of *P, unescaped ('\x' is 'x'), or NULL
 * when out of memory. */
static char *next_field(const char **p)
{
	const char *s = *p;
	char *out = malloc(strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	while (*s && *s != ':') {
		if (*s == '\\' && s[1])
			s++;
		*o++ = *s++;
	}
	*o = '\0';
	*p = *s ? s + 1 : s;
	return out;
}

static int spec_parse(const char *path, struct rbd_spec *s)
{
	const char *p = path + 4;
	char *first = NULL, *slash, *at;
	int r = -ENOMEM;

	memset(s, 0, sizeof(*s));
	first = next_field(&p);
	if (!first)
		goto out;
	at = strchr(first, '@');
	if (at) {
		*at = '\0';
		if (!(s->snap = strdup(at + 1)))
			goto out;
	}
	slash = strchr(first, '/');
	if (!slash || (s->snap && !s->snap[0])) {
		r = bci_error(-EINVAL, "%s: give rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER][:keyring=PATH]", path);
		goto out;
	}
	*slash = '\0';
	s->pool = strdup(first);
	if (strchr(slash + 1, '/')) {
		char *second = strchr(slash + 1, '/');

		*second = '\0';
		s->ns = strdup(slash + 1);
		s->image = strdup(second + 1);
		if (!s->ns)
			goto out;
	} else
		s->image = strdup(slash + 1);
	if (!s->pool || !s->image)
		goto out;
	if (!s->pool[0] || !s->image[0] || strchr(s->image, '/')) {
		r = bci_error(-EINVAL, "%s: give rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER][:keyring=PATH]", path);
		goto out;
	}
	while (*p) {
		char *kv = next_field(&p), *eq, **dst = NULL;

		if (!kv)
			goto out;
		eq = strchr(kv, '=');
		if (eq) {
			*eq = '\0';
			dst = !strcmp(kv, "conf") ? &s->conf : !strcmp(kv, "id") ? &s->id :
			      !strcmp(kv, "keyring") ? &s->keyring : NULL;
		}
		if (!dst || *dst || !eq[1]) {
			r = bci_error(-EINVAL, "%s: unknown or repeated option '%s' (known: conf=, id=, keyring=)",
				     path, kv);
			free(kv);
			goto out;
		}
		*dst = strdup(eq + 1);
		free(kv);
		if (!*dst)
			goto out;
	}
	r = 0;
out:
	free(first);
	if (r == -ENOMEM)
		r = bci_error(-ENOMEM, "out of memory");
	if (r < 0)
		spec_free(s);
	return r;
}

/* A one-line name of the image for messages: POOL/IMAGE[@SNAP]. */
static const char *image_name(const struct rbd_image_ref *ref, char *buf, size_t size)
{
	const struct rbd_spec *s = &ref->spec;

	snprintf(buf, size, "rbd:%s/%s%s%s%s%s", s->pool, s->ns ? s->ns : "", s->ns ? "/" : "", s->image,
		 s->snap ? "@" : "", s->snap ? s->snap : "");
	return buf;
}

static int set_default_timeout(rados_t c, const char *option)
{
	char value[32];

	if (rados_conf_get(c, option, value, sizeof(value)) < 0 || strtod(value, NULL) > 0)
		return 0;
	return rados_conf_set(c, option, BC_RBD_DEFAULT_TIMEOUT);
}

static int rbd_errno(int r)
{
	switch (-r) {
	case ETIMEDOUT: case ESHUTDOWN: /* blocklisted */ case ECONNREFUSED: case ENOTCONN: case ECANCELED:
		return -EIO;
	case EDQUOT:
		return -ENOSPC;
	default:
		return r;
	}
}

static void disconnect_image(struct rbd_image_ref *ref);

/* The message for a failed RBD request: a timeout is what a full or
 * unreachable cluster looks like to a client (librbd holds the request
 * until rados_osd_op_timeout, then ETIMEDOUT), so say so. */
static const char *why(int r)
{
	return r == -ETIMEDOUT ? "no answer within rados_osd_op_timeout (is the cluster full or unreachable? "
				 "see ceph health)" : strerror(-r);
}

/* Connect to REF->spec's cluster and pool (REF->cluster, REF->io). */
static int connect_pool(struct rbd_image_ref *ref, const char *name)
{
	const struct rbd_spec *s = &ref->spec;
	rados_t c = NULL;
	int r;

	r = rados_create(&c, s->id);
	if (r < 0)
		return bci_error(r, "%s: cannot set up a Ceph client: %s", name, strerror(-r));
	r = rados_conf_read_file(c, s->conf);
	if (r < 0) {
		r = bci_error(r == -ENOENT || r == -EINVAL ? -ENOENT : r, "%s: cannot read the Ceph configuration %s: %s",
			     name, s->conf ? s->conf : "($CEPH_CONF, /etc/ceph/ceph.conf)", strerror(-r));
		goto fail;
	}
	r = rados_conf_parse_env(c, NULL);
	if (r == 0 && s->keyring)
		r = rados_conf_set(c, "keyring", s->keyring);
	if (r == 0)
		r = set_default_timeout(c, "rados_osd_op_timeout");
	if (r == 0)
		r = set_default_timeout(c, "rados_mon_op_timeout");
	if (r < 0) {
		r = bci_error(-EINVAL, "%s: bad Ceph configuration: %s", name, strerror(-r));
		goto fail;
	}
	r = rados_connect(c);
	if (r < 0) {
		char t[32] = "?";

		rados_conf_get(c, "client_mount_timeout", t, sizeof(t));
		r = bci_error(r == -EACCES || r == -EPERM ? -EACCES : -EIO,
			     "%s: cannot connect to the Ceph cluster (client_mount_timeout %s s): %s", name, t,
			     strerror(-r));
		goto fail;
	}
	r = rados_ioctx_create(c, s->pool, &ref->io);
	if (r < 0) {
		r = bci_error(r == -ENOENT ? -ENOENT : rbd_errno(r), "%s: pool '%s': %s", name, s->pool,
			     r == -ENOENT ? "no such pool" : strerror(-r));
		goto fail;
	}
	if (s->ns)
		rados_ioctx_set_namespace(ref->io, s->ns);
	ref->cluster = c;
	return 0;
fail:
	ref->io = NULL;
	rados_shutdown(c);
	return r;
}

/* Connect and open the image of REF->spec into REF's handles. */
static int connect_image(struct rbd_image_ref *ref)
{
	const struct rbd_spec *s = &ref->spec;
	char name[PATH_MAX];
	int r;

	image_name(ref, name, sizeof(name));
	r = connect_pool(ref, name);
	if (r < 0)
		return r;
	r = s->snap ? rbd_open_read_only(ref->io, s->image, &ref->image, s->snap) :
		      rbd_open(ref->io, s->image, &ref->image, NULL);
	if (r < 0) {
		ref->image = NULL;
		r = bci_error(r == -ENOENT ? -ENOENT : rbd_errno(r), "%s: %s", name,
			     r == -ENOENT ? (s->snap ? "no such image or snapshot" : "no such image") : why(r));
		disconnect_image(ref);
	}
	return r;
}

static void disconnect_image(struct rbd_image_ref *ref)
{
	if (ref->image)
		rbd_close(ref->image);
	if (ref->io)
		rados_ioctx_destroy(ref->io);
	if (ref->cluster)
		rados_shutdown(ref->cluster);
	ref->image = NULL;
	ref->io = NULL;
	ref->cluster = NULL;
}

static char *spec_key(const struct rbd_spec *s)
{
	char *k = NULL;

	if (asprintf(&k, "%s\n%s\n%s\n%s\n%s\n%s\n%s", s->pool, s->ns ? s->ns : "", s->image, s->snap ? s->snap : "",
		     s->conf ? s->conf : "", s->id ? s->id : "", s->keyring ? s->keyring : "") < 0)
		return NULL;
	return k;
}

/* Find or open the image PATH names; a reference the caller must put. */
static int image_get(const char *path, struct rbd_image_ref **out)
{
	struct rbd_image_ref *ref = NULL;
	struct rbd_spec s;
	char *key;
	int r;

	*out = NULL;
	r = spec_parse(path, &s);
	if (r < 0)
		return r;
	key = spec_key(&s);
	if (!key) {
		spec_free(&s);
		return bci_error(-ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&images_lock);
	for (ref = images; ref; ref = ref->next)
		if (!strcmp(ref->key, key))
			break;
	if (ref) {
		ref->refs++;
		spec_free(&s);
		free(key);
		r = 0;
		goto out;
	}
	ref = calloc(1, sizeof(*ref));
	if (!ref) {
		spec_free(&s);
		free(key);
		r = bci_error(-ENOMEM, "out of memory");
		goto out;
	}
	ref->spec = s;
	ref->key = key;
	r = connect_image(ref);
	if (r < 0) {
		spec_free(&ref->spec);
		free(ref->key);
		free(ref);
		ref = NULL;
		goto out;
	}
	ref->refs = 1;
	ref->next = images;
	images = ref;
out:
	pthread_mutex_unlock(&images_lock);
	*out = ref;
	return r;
}

static void image_put(struct rbd_image_ref *ref)
{
	struct rbd_image_ref **p;

	if (!ref)
		return;
	pthread_mutex_lock(&images_lock);
	if (--ref->refs) {
		pthread_mutex_unlock(&images_lock);
		return;
	}
	for (p = &images; *p; p = &(*p)->next)
		if (*p == ref) {
			*p = ref->next;
			break;
		}
	pthread_mutex_unlock(&images_lock);
	if (ref->locked) {
		rbd_metadata_remove(ref->image, HOLDER_KEY);
		rbd_lock_release(ref->image);
	}
	disconnect_image(ref);
	spec_free(&ref->spec);
	free(ref->key);
	free(ref);
}

/* -EBUSY naming who holds REF's lock. */
static int busy_error(struct rbd_image_ref *ref)
{
	char name[PATH_MAX], holder[256] = "", owner[128] = "another client", *owners[4];
	size_t n_owners = ARRAY_SIZE(owners), len = sizeof(holder);
	rbd_lock_mode_t mode;

	if (rbd_lock_get_owners(ref->image, &mode, owners, &n_owners) == 0 && n_owners > 0) {
		snprintf(owner, sizeof(owner), "%s", owners[0]);
		rbd_lock_get_owners_cleanup(owners, n_owners);
	}
	if (rbd_metadata_get(ref->image, HOLDER_KEY, holder, &len) < 0)
		holder[0] = '\0';
	return bci_error(-EBUSY, "%s is in use: its exclusive lock is held by %s%s%s%s (if that client is dead, "
			"attach --break-lock takes over and fences it)", image_name(ref, name, sizeof(name)),
			owner, holder[0] ? " (" : "", holder, holder[0] ? ")" : "");
}

/* Take REF's exclusive lock (REF->locked) unless held; images_lock held. */
static int acquire_lock(struct rbd_image_ref *ref)
{
	char name[PATH_MAX], holder[256], host[128] = "?", when[32] = "?";
	time_t now = time(NULL);
	struct tm tm;
	uint64_t features = 0;
	int r;

	image_name(ref, name, sizeof(name));
	if (ref->locked)
		return 0;
	if (ref->spec.snap)
		return bci_error(-EROFS, "%s: a snapshot is read-only", name);
	if (rbd_get_features(ref->image, &features) == 0 && !(features & RBD_FEATURE_EXCLUSIVE_LOCK))
		return bci_error(-ENOTSUP, "%s: the image has no exclusive-lock feature, so two writers could "
				"not be kept apart; enable it (rbd feature enable %s/%s exclusive-lock)", name,
				ref->spec.pool, ref->spec.image);
	/* Held by anyone, alive or dead: refused at once.  (librbd alone
	 * would wait for a dead holder's watch to time out, ~30 s, and then
	 * take over silently; taking over is the user's call.) */
	{
		char *owners[4];
		size_t n = ARRAY_SIZE(owners);
		rbd_lock_mode_t mode;

		r = rbd_lock_get_owners(ref->image, &mode, owners, &n);
		if (r == 0 && n > 0) {
			if (!break_lock) {
				rbd_lock_get_owners_cleanup(owners, n);
				return busy_error(ref);
			}
			for (size_t i = 0; i < n; i++) {
				bci_log("%s: breaking the lock of %s (the cluster blocklists it)", name, owners[i]);
				r = rbd_lock_break(ref->image, RBD_LOCK_MODE_EXCLUSIVE, owners[i]);
				if (r < 0 && r != -ENOENT) {
					rbd_lock_get_owners_cleanup(owners, n);
					return bci_error(rbd_errno(r), "%s: cannot break the lock of %s: %s", name,
							owners[0], strerror(-r));
				}
			}
			rbd_lock_get_owners_cleanup(owners, n);
		}
	}
	r = rbd_lock_acquire(ref->image, RBD_LOCK_MODE_EXCLUSIVE);
	if (r == -EROFS || r == -EBUSY)
		return busy_error(ref);
	if (r < 0)
		return bci_error(rbd_errno(r), "%s: cannot take the exclusive lock: %s", name, why(r));
	ref->locked = true;
	gethostname(host, sizeof(host) - 1);
	if (gmtime_r(&now, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(holder, sizeof(holder), "blockcrypt on %s, pid %ld, since %s", host, (long)getpid(), when);
	/* Only a hint for the next one to be refused. */
	rbd_metadata_set(ref->image, HOLDER_KEY, holder);
	return 0;
}

static int lock_ref(struct rbd_image_ref *ref)
{
	int r;

	pthread_mutex_lock(&images_lock);
	r = acquire_lock(ref);
	if (r == 0)
		ref->lock_refs++;
	pthread_mutex_unlock(&images_lock);
	return r;
}

static void unlock_ref(struct rbd_image_ref *ref)
{
	pthread_mutex_lock(&images_lock);
	if (ref->lock_refs && !--ref->lock_refs && ref->locked) {
		rbd_metadata_remove(ref->image, HOLDER_KEY);
		rbd_lock_release(ref->image);
		ref->locked = false;
	}
	pthread_mutex_unlock(&images_lock);
}

/* ---- the backing operations ---- */

static struct rbd_image_ref *backing_ref(struct bci_backing *b)
{
	return container_of(b, struct rbd_backing, b)->ref;
}

/* Issue one aio request and wait for it. */
enum aio_kind { AIO_READ, AIO_WRITE, AIO_DISCARD, AIO_FLUSH };

static int aio_wait(struct bci_backing *b, enum aio_kind kind, void *buf, size_t len, uint64_t off)
{
	rbd_image_t img = backing_ref(b)->image;
	rbd_completion_t c;
	ssize_t ret;
	int r;

	if (!img)
		return -ENOTCONN; /* (a parent after fork: see the top) */
	r = rbd_aio_create_completion(NULL, NULL, &c);
	if (r < 0)
		return r;
	switch (kind) {
	case AIO_READ: r = rbd_aio_read(img, off, len, buf, c); break;
	case AIO_WRITE: r = rbd_aio_write(img, off, len, buf, c); break;
	case AIO_DISCARD: r = rbd_aio_discard(img, off, len, c); break;
	case AIO_FLUSH: r = rbd_aio_flush(img, c); break;
	}
	if (r < 0) {
		rbd_aio_release(c);
		return r;
	}
	rbd_aio_wait_for_complete(c);
	ret = rbd_aio_get_return_value(c);
	rbd_aio_release(c);
	if (ret < 0)
		return (int)ret;
	if (kind == AIO_READ && (size_t)ret != len)
		return -ENODATA;
	return 0;
}

static int rbdb_pread(struct bci_backing *b, void *buf, size_t len, uint64_t off)
{
	int r = aio_wait(b, AIO_READ, buf, len, off);

	if (r == -ENODATA || r == -EINVAL)
		return bci_error(-EIO, "backing: read at %llu: past the end of the image (shrunk?)",
				(unsigned long long)off);
	return r < 0 ? bci_error(rbd_errno(r), "backing: RBD read at %llu: %s", (unsigned long long)off,
				why(r)) : 0;
}

static int rbdb_pwrite(struct bci_backing *b, const void *buf, size_t len, uint64_t off)
{
	struct rbd_backing *rb = container_of(b, struct rbd_backing, b);
	int r;

	/* Never without the lock: librbd would take it from its holder. */
	if (!rb->holds_lock || !__atomic_load_n(&rb->ref->locked, __ATOMIC_ACQUIRE))
		return bci_error(-EROFS, "backing: RBD write refused: this client does not hold the image's lock");
	r = aio_wait(b, AIO_WRITE, (void *)buf, len, off);
	return r < 0 ? bci_error(rbd_errno(r), "backing: RBD write at %llu: %s", (unsigned long long)off,
				why(r)) : 0;
}

static int rbdb_flush(struct bci_backing *b)
{
	int r = aio_wait(b, AIO_FLUSH, NULL, 0, 0);

	return r < 0 ? rbd_errno(r) : 0;
}

static int rbdb_discard(struct bci_backing *b, uint64_t len, uint64_t off)
{
	struct rbd_backing *rb = container_of(b, struct rbd_backing, b);
	int r;

	if (!rb->holds_lock)
		return bci_error(-EROFS, "backing: RBD discard refused: this client does not hold the image's lock");
	r = aio_wait(b, AIO_DISCARD, NULL, (size_t)len, off);
	return r < 0 ? bci_error(rbd_errno(r), "backing: RBD discard: %s", why(r)) : 0;
}

static int rbdb_size(struct bci_backing *b, uint64_t *size)
{
	int r = backing_ref(b)->image ? rbd_get_size(backing_ref(b)->image, size) : -ENOTCONN;

	return r < 0 ? bci_error(rbd_errno(r), "backing: cannot get the RBD image size: %s", strerror(-r)) : 0;
}

static int rbdb_grow(struct bci_backing *b, uint64_t size)
{
	uint64_t now;
	int r = rbdb_size(b, &now);

	if (r < 0 || now >= size)
		return r;
	if (!container_of(b, struct rbd_backing, b)->holds_lock)
		return bci_error(-EROFS, "backing: RBD resize refused: this client does not hold the image's lock");
	r = rbd_resize(backing_ref(b)->image, size);
	return r < 0 ? bci_error(rbd_errno(r), "backing: cannot grow the RBD image to %llu bytes: %s",
				(unsigned long long)size, strerror(-r)) : 0;
}

static void rbdb_close(struct bci_backing *b)
{
	struct rbd_backing *rb = container_of(b, struct rbd_backing, b);

	if (rb->holds_lock)
		unlock_ref(rb->ref);
	image_put(rb->ref);
	free(rb);
}

static const struct bci_backing_ops rbd_ops = {
	.pread = rbdb_pread,
	.pwrite = rbdb_pwrite,
	.flush = rbdb_flush,
	.discard = rbdb_discard,
	.size = rbdb_size,
	.grow = rbdb_grow,
	.close = rbdb_close,
};

int bci_backing_rbd_open(const char *path, bool read_only, struct bci_backing **out)
{
	struct rbd_backing *rb;
	struct rbd_image_ref *ref;
	int r;

	*out = NULL;
	r = image_get(path, &ref);
	if (r < 0)
		return r;
	if (!read_only && ref->spec.snap) {
		image_put(ref);
		return bci_error(-EROFS, "%s: a snapshot is read-only", path);
	}
	if (!read_only) {
		r = lock_ref(ref);
		if (r < 0) {
			image_put(ref);
			return r;
		}
	}
	rb = calloc(1, sizeof(*rb));
	if (!rb) {
		if (!read_only)
			unlock_ref(ref);
		image_put(ref);
		return bci_error(-ENOMEM, "out of memory");
	}
	rb->b.ops = &rbd_ops;
	rb->b.read_only = read_only;
	rb->b.grows_on_resize = true;
	rb->ref = ref;
	rb->holds_lock = !read_only;
	*out = &rb->b;
	return 0;
}

/* ---- whole-image operations, for the layers above ---- */

int bci_rbd_lock(const char *path, void **out)
{
	struct rbd_image_ref *ref;
	int r = image_get(path, &ref);

	*out = NULL;
	if (r < 0)
		return r;
	r = lock_ref(ref);
	if (r < 0) {
		image_put(ref);
		return r;
	}
	*out = ref;
	return 0;
}

void bci_rbd_unlock(void *lock)
{
	if (!lock)
		return;
	unlock_ref(lock);
	image_put(lock);
}

int bci_rbd_size(const char *path, uint64_t *size)
{
	struct rbd_image_ref *ref;
	int r = image_get(path, &ref);

	if (r < 0)
		return r;
	r = rbd_get_size(ref->image, size);
	if (r < 0)
		r = bci_error(rbd_errno(r), "%s: cannot get the image size: %s", path, strerror(-r));
	image_put(ref);
	return r;
}

int bc_rbd_check(const char *path, bool *read_only)
{
	struct rbd_image_ref *ref;
	int r = image_get(path, &ref);

	if (r < 0)
		return r;
	if (read_only)
		*read_only = ref->spec.snap != NULL;
	image_put(ref);
	return 0;
}

int bc_rbd_create(const char *path, uint64_t size)
{
	struct rbd_image_ref ref = { 0 };
	rbd_image_options_t opts;
	char name[PATH_MAX];
	rbd_image_t img;
	int r;

	r = spec_parse(path, &ref.spec);
	if (r < 0)
		return r;
	image_name(&ref, name, sizeof(name));
	if (ref.spec.snap) {
		r = bci_error(-EINVAL, "%s: cannot create a snapshot; give an image", name);
		goto out;
	}
	/* Connect without opening: the image does not exist yet. */
	r = connect_pool(&ref, name);
	if (r < 0)
		goto out;
	/* An image that exists is the caller's to find out about first. */
	if (rbd_open_read_only(ref.io, ref.spec.image, &img, NULL) == 0) {
		rbd_close(img);
		r = bci_error(-EEXIST, "%s: the image exists already", name);
		goto out;
	}
	rbd_image_options_create(&opts);
	r = rbd_create4(ref.io, ref.spec.image, size, opts);
	rbd_image_options_destroy(opts);
	if (r < 0)
		r = bci_error(r == -EEXIST ? -EEXIST : rbd_errno(r), "%s: cannot create the image: %s", name,
			     strerror(-r));
out:
	if (ref.io)
		rados_ioctx_destroy(ref.io);
	if (ref.cluster)
		rados_shutdown(ref.cluster);
	spec_free(&ref.spec);
	return r;
}

int bci_rbd_remove(const char *path)
{
	struct rbd_image_ref ref = { 0 };
	int r = spec_parse(path, &ref.spec);

	if (r < 0)
		return r;
	r = connect_image(&ref);
	if (r == 0) {
		rados_ioctx_t io = ref.io;

		rbd_close(ref.image);
		ref.image = NULL;
		r = rbd_remove(io, ref.spec.image);
	}
	disconnect_image(&ref);
	spec_free(&ref.spec);
	return r;
}

void bc_rbd_before_fork(void)
{
	/* No Ceph client may run at fork(): a child gets none of its threads,
	 * and any lock one of them held (in librados or the C library) would
	 * stay locked in the child for good.  So every client is shut down
	 * here, its threads joined; the child connects anew, the parent only
	 * closes what it had. */
	pthread_mutex_lock(&images_lock);
	for (struct rbd_image_ref *ref = images; ref; ref = ref->next) {
		ref->relock = ref->locked;
		if (ref->locked) {
			/* The child takes it again: it is a new client. */
			rbd_lock_release(ref->image);
			ref->locked = false;
		}
		disconnect_image(ref);
	}
	pthread_mutex_unlock(&images_lock);
}

int bc_rbd_after_fork_child(void)
{
	int r = 0;

	pthread_mutex_init(&images_lock, NULL);
	for (struct rbd_image_ref *ref = images; ref && r == 0; ref = ref->next) {
		r = connect_image(ref);
		if (r == 0 && ref->relock)
			r = acquire_lock(ref);
		ref->relock = false;
	}
	return r;
}
