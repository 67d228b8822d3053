/* The runtime directory of attached volumes: for each NAME a state file
 * (NAME.json), an NBD socket (NAME.sock, by default) and a control socket
 * (NAME.ctl) through which list/status/detach talk to the daemon. */
#ifndef BC_RUNTIME_H
#define BC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

/* $BLOCKCRYPT_RUN_DIR, or /run/blockcrypt. */
const char *rt_dir(void);
int rt_ensure_dir(void);
/* rt_dir()/NAME.SUFFIX into BUF. */
int rt_path(char *buf, size_t size, const char *name, const char *suffix);
int rt_valid_name(const char *name);

/* Read NAME's state file; NULL when absent or unreadable. */
json_object *rt_read_state(const char *name);
int rt_write_state(const char *name, json_object *state);
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
void rt_remove(const char *name);
/* Names with a state file, sorted; caller frees each and the array. */
int rt_list_names(char ***names, size_t *count);

/* State of an attached NAME merged with the daemon's live status
 * (clients, fuse_open, and "responding": whether the daemon answered
 * within RT_CONTROL_TIMEOUT_MS); NULL when NAME is not attached. */
json_object *rt_entry(const char *name);

/* How long a command waits for the daemon's answer: generous, since a
 * daemon under heavy I/O (or a sanitizer build) can be slow to answer. */
#define RT_CONTROL_TIMEOUT_MS 10000

/* Send one command line to NAME's control socket and read the one-line
 * answer into BUF; -errno on failure. */
int rt_control(const char *name, const char *command, char *buf, size_t size, int timeout_ms);

#endif
