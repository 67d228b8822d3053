/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading passphrases and key files into secure memory.
 *
 * Key files are taken whole and byte-exact, as cryptsetup's --key-file does
 * (no newline stripping), so volumes are interchangeable with cryptsetup.
 * A prompted passphrase ends at the first newline.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/macros.h"
#include "core/secret.h"

#define KEYFILE_MAX (8u << 20)   /* cryptsetup's default key file limit */
#define PASSPHRASE_MAX 512

static int grow(struct bc_secret **s)
{
	struct bc_secret *n;
	size_t cap = bc_secret_capacity(*s);
	int r;

	cap = cap * 2 > KEYFILE_MAX ? KEYFILE_MAX : cap * 2;
	r = bc_secret_new(cap, &n);
	if (r < 0)
		return r;
	memcpy(bc_secret_buf(n), bc_secret_data(*s), bc_secret_len(*s));
	bc_secret_set_len(n, bc_secret_len(*s));
	bc_secret_free(*s);
	*s = n;
	return 0;
}

/* Skip the first OFFSET bytes of FD: seek where it can, else read them
 * (a pipe), into a scratch buffer that is wiped (it held key bytes). */
static int skip_bytes(int fd, const char *path, uint64_t offset)
{
	uint8_t junk[4096];
	int r = 0;

	if (!offset || lseek(fd, (off_t)offset, SEEK_CUR) >= 0)
		return 0;
	while (offset) {
		ssize_t n = read(fd, junk, offset < sizeof(junk) ? (size_t)offset : sizeof(junk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? bci_error(-errno, "key file %s: %s", path, strerror(errno)) :
				    bci_error(-EINVAL, "key file %s: shorter than --keyfile-offset", path);
			break;
		}
		offset -= (uint64_t)n;
	}
	explicit_bzero(junk, sizeof(junk));
	return r;
}

int bc_secret_from_file(const char *path, struct bc_secret **out)
{
	return bc_secret_from_file_range(path, 0, 0, out);
}

int bc_secret_from_file_range(const char *path, uint64_t offset, size_t size, struct bc_secret **out)
{
	struct bc_secret *s = NULL;
	size_t limit = size ? size : KEYFILE_MAX;
	struct stat st;
	size_t cap = 4096;
	int fd, r;

	*out = NULL;
	if (size > KEYFILE_MAX)
		return bci_error(-EINVAL, "key file %s: --keyfile-size is larger than %u bytes", path, KEYFILE_MAX);
	if (!strcmp(path, "-"))
		fd = STDIN_FILENO;
	else
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bci_error(-errno, "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		uint64_t left = (uint64_t)st.st_size > offset ? (uint64_t)st.st_size - offset : 0;

		if (offset >= (uint64_t)st.st_size && st.st_size) {
			r = bci_error(-EINVAL, "key file %s: shorter than --keyfile-offset %llu", path,
				      (unsigned long long)offset);
			goto out;
		}
		if (left > limit && !size) {
			r = bci_error(-EINVAL, "key file %s: larger than %u bytes", path, KEYFILE_MAX);
			goto out;
		}
		cap = left ? (size_t)(left < limit ? left : limit) : 1;
	} else if (size) {
		cap = size;
	}
	r = skip_bytes(fd, path, offset);
	if (r < 0)
		goto out;
	r = bc_secret_new(cap, &s);
	if (r < 0)
		goto out;
	for (;;) {
		size_t len = bc_secret_len(s), want;
		ssize_t n;

		if (len == limit && size)
			break;
		if (len == bc_secret_capacity(s)) {
			if (len == KEYFILE_MAX) {
				r = bci_error(-EINVAL, "key file %s: larger than %u bytes", path, KEYFILE_MAX);
				goto out;
			}
			r = grow(&s);
			if (r < 0)
				goto out;
		}
		want = bc_secret_capacity(s) - len;
		if (size && want > size - len)
			want = size - len;
		n = read(fd, bc_secret_buf(s) + len, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = bci_error(-errno, "key file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		bc_secret_set_len(s, len + (size_t)n);
	}
	if (bc_secret_len(s) == 0) {
		r = bci_error(-EINVAL, "key file %s: empty", path);
		goto out;
	}
	if (size && bc_secret_len(s) < size) {
		/* As cryptsetup: a key shorter than asked for is an error. */
		r = bci_error(-EINVAL, "key file %s: holds %zu bytes after the offset, %zu asked for", path,
			      bc_secret_len(s), size);
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	bc_secret_free(s);
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

/* Signals that end a prompt: the terminal gets its echo back first. */
static const int prompt_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define N_PROMPT_SIGNALS ARRAY_SIZE(prompt_signals)
static volatile sig_atomic_t prompt_signal;

static void on_prompt_signal(int sig)
{
	prompt_signal = sig;
}

int bc_secret_prompt(const char *prompt, struct bc_secret **out)
{
	return bc_secret_prompt_timeout(prompt, 0, out);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until FD can be read, up to DEADLINE (CLOCK_MONOTONIC ms; 0: no
 * deadline): 0, -ETIME, or -EINTR (a signal: the caller looks). */
static int wait_input(int fd, uint64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t now = now_ms();
	int n;

	if (!deadline_ms)
		return 0;
	if (now >= deadline_ms)
		return -ETIME;
	n = poll(&p, 1, deadline_ms - now > INT_MAX ? INT_MAX : (int)(deadline_ms - now));
	return n < 0 ? -errno : n == 0 ? -ETIME : 0;
}

int bc_secret_prompt_timeout(const char *prompt, uint32_t timeout_s, struct bc_secret **out)
{
	struct sigaction sa = { .sa_handler = on_prompt_signal }, saved[N_PROMPT_SIGNALS];
	struct bc_secret *s = NULL;
	struct termios old, noecho;
	bool restore = false, handlers = false;
	uint64_t deadline_ms = timeout_s ? now_ms() + (uint64_t)timeout_s * 1000 : 0;
	int fd, r, sig;

	*out = NULL;
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return bci_error(-EINVAL, "passphrase: no terminal to ask on (use --key-file)");
	r = bc_secret_new(PASSPHRASE_MAX, &s);
	if (r < 0)
		goto out;
	/* No SA_RESTART: a signal interrupts read() below, which then puts
	 * the terminal back before the signal is delivered for real. */
	/* A signal ignored on entry (nohup's SIGHUP, a background job's
	 * SIGINT) stays ignored: the user asked for that. */
	prompt_signal = 0;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++) {
		sigaction(prompt_signals[i], NULL, &saved[i]);
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(prompt_signals[i], &sa, NULL);
	}
	handlers = true;
	if (tcgetattr(fd, &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		noecho.c_lflag |= ECHONL;
		restore = tcsetattr(fd, TCSAFLUSH, &noecho) == 0;
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		r = bci_error(-errno, "passphrase: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		char c;
		int w = prompt_signal ? 0 : wait_input(fd, deadline_ms);
		ssize_t n = prompt_signal || w < 0 ? -1 : read(fd, &c, 1);

		if (prompt_signal) {
			r = bci_error(-ECANCELED, "passphrase: interrupted");
			goto out;
		}
		if (w == -ETIME) {
			r = bci_error(-ETIME, "passphrase: no answer within %u seconds (timeout)", (unsigned)timeout_s);
			goto out;
		}
		if (w == -EINTR || (n < 0 && errno == EINTR))
			continue;
		if (n < 0) {
			r = bci_error(-errno, "passphrase: %s", strerror(errno));
			goto out;
		}
		if (n == 0 || c == '\n')
			break;
		if (bc_secret_len(s) == PASSPHRASE_MAX) {
			r = bci_error(-EINVAL, "passphrase: longer than %d characters", PASSPHRASE_MAX);
			goto out;
		}
		bc_secret_buf(s)[bc_secret_len(s)] = (uint8_t)c;
		bc_secret_set_len(s, bc_secret_len(s) + 1);
		explicit_bzero(&c, sizeof(c));
	}
	if (bc_secret_len(s) == 0) {
		r = bci_error(-EINVAL, "passphrase: empty");
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		/* The line the user did not get to end. */
		if (r == -ETIME)
			(void)!write(fd, "\n", 1);
	}
	bc_secret_free(s);
	close(fd);
	if (!handlers)
		return r;
	for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
		sigaction(prompt_signals[i], &saved[i], NULL);
	/* Die of the signal as we would have without the prompt (the shell
	 * sees it), now that the terminal echoes again. */
	sig = prompt_signal;
	if (sig) {
		if (restore)
			(void)!write(STDERR_FILENO, "\n", 1);
		raise(sig);
	}
	return r;
}
