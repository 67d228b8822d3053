/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The runtime directory of attached volumes: for each NAME a state file
 * (NAME.json), an NBD socket (NAME.sock, by default) and a control socket
 * (NAME.ctl) through which list/status/detach talk to the daemon
 * (control.h). */
#ifndef BC_RUNTIME_H
#define BC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

/* Longest NAME: longer ones are refused, never truncated. */
#define RT_NAME_MAX 64

/* $BLOCKCRYPT_RUN_DIR (made absolute), or /run/blockcrypt. */
const char *rt_dir(void);
/* Create the runtime directory (0700), or accept an existing one only if
 * it and its parents are owned by us or root and writable by nobody else
 * (a sticky parent such as /tmp excepted); -EACCES otherwise.  Every
 * other rt_ function makes the same check before it touches the
 * directory, and opens its files relative to it, never through a
 * symlink. */
int rt_ensure_dir(void);
/* rt_dir()/NAME.SUFFIX into BUF (for sockets, which are bound and
 * connected by path). */
int rt_path(char *buf, size_t size, const char *name, const char *suffix);
/* 0, or -EINVAL with a message: NAME becomes a file name in the runtime
 * directory (1-64 letters, digits, '.', '_', '-'; no leading '.' or '-'). */
int rt_valid_name(const char *name);

/* NAME's state file: 0, -ENOENT (absent, not reported), or another
 * reported -errno (-EACCES: permission denied; -EINVAL: an invalid name,
 * or a state file that is a symlink or not JSON). */
int rt_state(const char *name, json_object **state);
/* The same, NULL on any failure. */
json_object *rt_read_state(const char *name);
/* Atomically, mode 0600. */
int rt_write_state(const char *name, json_object *state);
/* Open (create, append) NAME.log for the daemon; a symlink or anything
 * but a regular file there is refused. */
int rt_open_log(const char *name);
/* Is PID a live (not zombie) process, and blockcrypt if asked? */
bool rt_pid_running(pid_t pid, bool want_blockcrypt);
/* Claim NAME for one daemon: an OFD lock on NAME.lock in the runtime
 * directory, taken before anything of NAME is created and held by the
 * daemon until it has removed its files, so two attaches of one name can
 * never both proceed, and a loser never touches the winner's files.
 * Returns the descriptor holding the claim, or -EBUSY (already attached).
 * A dead daemon's claim ends with it (kill -9 included). */
int rt_claim_name(const char *name);
/* Give the claim up (the daemon, after removing its files). */
void rt_release_name(const char *name, int fd);
/* Does a live process hold NAME's claim? */
bool rt_name_claimed(const char *name);
/* Is the daemon recorded for NAME alive (it holds NAME's claim)?  Stale
 * entries are removed and reported as not alive. */
bool rt_alive(const char *name, json_object *state);
/* rt_state() of a NAME whose daemon is alive; a stale entry is cleared
 * and is -ENOENT. */
int rt_attached(const char *name, json_object **state);
/* rt_attached() of a NAME given by the user: an invalid name, or one
 * not attached ("NAME: not attached", -ENOENT), is reported. */
int rt_find(const char *name, json_object **state);
/* NAME.json, NAME.ctl and NAME.sock, by name: paths found in the state
 * file are never trusted for deletion. */
void rt_remove(const char *name);
/* Names with a state file, sorted; caller frees each and the array. */
int rt_list_names(char ***names, size_t *count);

/* Is NAME.SUFFIX a socket itself (not a symlink to one)? */
bool rt_is_socket(const char *name, const char *suffix);

#endif
