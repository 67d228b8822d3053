/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Asking for a passphrase or a PIN: on the terminal, or through systemd's
 * password agents when there is no terminal (a unit started at boot).
 *
 * Process and threading model: entered on the thread that runs the command
 * (cli_get_key(), cli_get_pin()), before the attach daemon forks or starts
 * threads of its own; one question at a time, no state shared between
 * calls, no lock.  The process-wide umask is changed for the bind() of the
 * agent socket only (no other thread creates files then).  While a question
 * waits, SIGINT, SIGTERM, SIGHUP and SIGQUIT (those not ignored on entry)
 * are blocked on this thread and read from a signalfd: the terminal gets
 * its echo back and the question's files are removed before the signal is
 * raised again with the caller's mask, so the command dies of it as it
 * would have without the question (systemctl stop during a boot prompt).
 * A library's thread that has the signal unblocked may take it instead;
 * the files then stay, and the agents drop a question whose PID= is gone.
 *
 * The agent protocol (https://systemd.io/PASSWORD_AGENTS/): a datagram
 * socket ASKPASS_DIR/sck.HEX with SO_PASSCRED, then the question, an ini
 * file written as tmp.XXXXXX and renamed to ask.XXXXXX so an agent never
 * reads half of it.  The answer is one datagram, "+PASSWORD" or "-"
 * (cancelled), taken from root only (SCM_CREDENTIALS).  The question and
 * the socket are removed when it is over, whatever the outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "askpass.h"
#include "attach/macros.h"

/* The longest passphrase taken, as bc_secret_prompt()'s. */
#define ASK_PASSPHRASE_MAX 512
#define ASK_MESSAGE_MAX 256
#define USEC_PER_SEC 1000000ull

/* ---- signals while a question waits ---------------------------------- */

static const int ask_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

struct ask_signals {
	sigset_t saved;   /* the caller's mask */
	int fd;           /* signalfd of those blocked, or -1 */
	int caught;       /* the signal that ended the question, or 0 */
};

static int signals_block(struct ask_signals *s)
{
	sigset_t set;

	s->fd = -1;
	s->caught = 0;
	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(ask_signals); i++) {
		struct sigaction sa;

		/* A signal ignored on entry (nohup's SIGHUP) stays ignored. */
		if (sigaction(ask_signals[i], NULL, &sa) == 0 && sa.sa_handler != SIG_IGN)
			sigaddset(&set, ask_signals[i]);
	}
	if (pthread_sigmask(SIG_BLOCK, &set, &s->saved) != 0)
		return bc_set_error(-EINVAL, "passphrase: cannot block signals");
	s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->fd < 0) {
		int r = -errno;

		pthread_sigmask(SIG_SETMASK, &s->saved, NULL);
		return bc_set_error(r, "passphrase: signalfd: %s", strerror(-r));
	}
	return 0;
}

/* The caller's mask back, and the signal that ended the question raised
 * for real (its handler, or its default action: death). */
static void signals_restore(struct ask_signals *s)
{
	if (s->fd < 0)
		return;
	close(s->fd);
	s->fd = -1;
	if (s->caught)
		raise(s->caught);  /* pending until the mask below lets it in */
	pthread_sigmask(SIG_SETMASK, &s->saved, NULL);
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* Wait until FD is readable: 1; -ETIME once DEADLINE (CLOCK_MONOTONIC µs,
 * 0 = none) has passed; -ECANCELED when a signal came (S->caught). */
static int wait_readable(int fd, struct ask_signals *s, uint64_t deadline)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = s->fd, .events = POLLIN } };
		int ms = -1, n;

		if (deadline) {
			uint64_t now = now_usec(), left;

			if (now >= deadline)
				return -ETIME;
			left = (deadline - now + 999) / 1000;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		n = poll(p, ARRAY_SIZE(p), ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (p[1].revents) {
			struct signalfd_siginfo si;

			if (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				s->caught = (int)si.ssi_signo;
				return -ECANCELED;
			}
		}
		if (p[0].revents)
			return 1;
	}
}

static int timed_out(uint32_t timeout_s)
{
	return bc_set_error(-ETIME, "passphrase: no answer within %" PRIu32 " seconds (timeout)", timeout_s);
}

/* ---- systemd's password agents --------------------------------------- */

/* Whether the agents can be asked: we run as a systemd service
 * ($INVOCATION_ID, which systemd sets for every unit it starts: a script
 * or cron job without a terminal must fail at once, as cryptsetup does,
 * not wait for an answer nobody is asked for), systemd runs the machine,
 * made their directory, and we may put a question there (root may; others
 * get the "no terminal" error, as before). */
static bool agents_available(void)
{
	const char *invocation = getenv("INVOCATION_ID");
	struct stat st;

	return invocation && *invocation &&
	       lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode) &&
	       lstat(ASKPASS_DIR, &st) == 0 && S_ISDIR(st.st_mode) && access(ASKPASS_DIR, W_OK) == 0;
}

/* KEY=VALUE with VALUE C-escaped, as systemd writes it (agents unescape). */
static void put_escaped(FILE *f, const char *key, const char *value)
{
	fprintf(f, "%s=", key);
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if (*c == '\\')
			fputs("\\\\", f);
		else if (*c < 0x20 || *c == 0x7f)
			fprintf(f, "\\x%02x", *c);
		else
			fputc(*c, f);
	}
	fputc('\n', f);
}

/* The question's file: written as TMP_PATH, then renamed to ASK_PATH
 * (both of SIZE bytes).  Whatever exists of it when this returns is named
 * by TMP_PATH or ASK_PATH (the other one empty), for the caller to remove. */
static int write_question(char *tmp_path, char *ask_path, size_t size, const char *sock_path,
			  const char *message, const char *id, uint64_t not_after)
{
	FILE *f;
	int fd, r;

	snprintf(tmp_path, size, "%s/tmp.XXXXXX", ASKPASS_DIR);
	fd = mkostemp(tmp_path, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		tmp_path[0] = '\0';
		return bc_set_error(r, "passphrase: %s: %s", ASKPASS_DIR, strerror(-r));
	}
	/* Agents may run as any user; the question holds no secret. */
	(void)fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		return bc_set_error(r, "passphrase: %s: %s", tmp_path, strerror(-r));
	}
	fprintf(f, "[Ask]\nPID=%ld\nSocket=%s\nAcceptCached=0\nEcho=0\nNotAfter=%" PRIu64 "\n",
		(long)getpid(), sock_path, not_after);
	put_escaped(f, "Message", message);
	if (id)
		put_escaped(f, "Id", id);
	fputs("Icon=drive-harddisk\n", f);
	r = ferror(f) ? -EIO : 0;
	if (fclose(f) != 0 && !r)
		r = -errno;
	if (r < 0)
		return bc_set_error(r, "passphrase: %s: %s", tmp_path, strerror(-r));
	/* .../tmp.XXXXXX -> .../ask.XXXXXX */
	snprintf(ask_path, size, "%s", tmp_path);
	memcpy(ask_path + strlen(ASKPASS_DIR "/"), "ask", 3);
	if (rename(tmp_path, ask_path) < 0) {
		r = bc_set_error(-errno, "passphrase: %s: %s", ask_path, strerror(errno));
		ask_path[0] = '\0';
		return r;
	}
	tmp_path[0] = '\0';
	return 0;
}

/* One datagram into BUF: 1 when it is an answer from root (its length in
 * *LEN, *TRUNCATED when it did not fit), 0 when it is to be ignored. */
static int receive(int fd, struct bc_secret *buf, size_t *len, bool *truncated)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = { .iov_base = bc_secret_buf(buf), .iov_len = bc_secret_capacity(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control),
	};
	const struct ucred *cred = NULL;
	ssize_t n;

	memset(&control, 0, sizeof(control));
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
		    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
			cred = (const struct ucred *)(void *)CMSG_DATA(c);
	if (!cred || cred->uid != 0 || n == 0) {
		/* Not root's: not an answer, and not kept either. */
		explicit_bzero(bc_secret_buf(buf), bc_secret_capacity(buf));
		return 0;
	}
	*len = (size_t)n;
	*truncated = (mh.msg_flags & MSG_TRUNC) != 0;
	return 1;
}

static int agent_ask(const char *message, const char *id, uint32_t timeout_s, struct bc_secret **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ask_signals sg = { .fd = -1 };
	char tmp_path[PATH_MAX] = "", ask_path[PATH_MAX] = "";
	struct bc_secret *buf = NULL;
	uint64_t not_after = 0, rnd;
	bool bound = false;
	int fd = -1, one = 1, r;
	mode_t mask;

	if (timeout_s)
		not_after = now_usec() + (uint64_t)timeout_s * USEC_PER_SEC;
	/* One byte for the '+', one to tell a passphrase too long. */
	r = bc_secret_new(ASK_PASSPHRASE_MAX + 2, &buf);
	if (r < 0)
		goto out;
	/* Before any file exists: a signal from here on removes them. */
	r = signals_block(&sg);
	if (r < 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		r = bc_set_error(-errno, "passphrase: socket: %s", strerror(errno));
		goto out;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = bc_set_error(-EIO, "passphrase: no random name for the agent socket");
		goto out;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sck.%016" PRIx64, ASKPASS_DIR, rnd);
	/* Only root (the agents) may send the answer. */
	mask = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(mask);
	if (r < 0) {
		r = bc_set_error(-errno, "passphrase: %s: %s", sa.sun_path, strerror(errno));
		goto out;
	}
	bound = true;
	r = write_question(tmp_path, ask_path, sizeof(ask_path), sa.sun_path, message, id, not_after);
	if (r < 0)
		goto out;
	for (;;) {
		size_t len = 0;
		bool truncated = false;

		r = wait_readable(fd, &sg, not_after);
		if (r == -ETIME) {
			r = timed_out(timeout_s);
			goto out;
		}
		if (r == -ECANCELED) {
			r = bc_set_error(r, "passphrase: interrupted");
			goto out;
		}
		if (r >= 0)
			r = receive(fd, buf, &len, &truncated);
		if (r < 0) {
			r = bc_set_error(r, "passphrase: %s: %s", sa.sun_path, strerror(-r));
			goto out;
		}
		if (r == 0)
			continue;
		if (bc_secret_buf(buf)[0] == '-') {
			r = bc_set_error(-ECANCELED, "passphrase: cancelled by the password agent");
			goto out;
		}
		if (bc_secret_buf(buf)[0] != '+') {
			/* Not the protocol: wait for a real answer. */
			explicit_bzero(bc_secret_buf(buf), len);
			continue;
		}
		if (truncated || len - 1 > ASK_PASSPHRASE_MAX) {
			r = bc_set_error(-EINVAL, "passphrase: longer than %d characters", ASK_PASSPHRASE_MAX);
			goto out;
		}
		if (len == 1) {
			r = bc_set_error(-EINVAL, "passphrase: empty");
			goto out;
		}
		r = bc_secret_from_bytes(bc_secret_buf(buf) + 1, len - 1, out);
		goto out;
	}
out:
	if (buf)
		explicit_bzero(bc_secret_buf(buf), bc_secret_capacity(buf));
	bc_secret_free(buf);
	if (ask_path[0])
		unlink(ask_path);
	if (tmp_path[0])
		unlink(tmp_path);
	if (bound)
		unlink(sa.sun_path);
	if (fd >= 0)
		close(fd);
	signals_restore(&sg);
	return r;
}

/* ---- the choice ------------------------------------------------------- */

int cli_ask_password(const char *prompt, const char *id, uint32_t timeout_s, struct bc_secret **out)
{
	char message[ASK_MESSAGE_MAX];
	const char *subject = id ? strchr(id, ':') : NULL;
	size_t len = strlen(prompt);
	int tty;

	*out = NULL;
	tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (tty >= 0) {
		/* The terminal prompt (its signal handling included). */
		close(tty);
		return bc_secret_prompt_timeout(prompt, timeout_s, out);
	}
	if (!agents_available())
		return bc_set_error(-EINVAL, "passphrase: no terminal to ask on (use --key-file)");
	/* "Enter passphrase: " -> "Enter passphrase for NAME" */
	while (len && (prompt[len - 1] == ' ' || prompt[len - 1] == ':'))
		len--;
	snprintf(message, sizeof(message), "%.*s%s%s", (int)len, prompt, subject ? " for " : "",
		 subject ? subject + 1 : "");
	return agent_ask(message, id, timeout_s, out);
}
