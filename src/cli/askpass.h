/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Asking for a passphrase or a PIN: on the terminal when there is one,
 * otherwise through systemd's password agents (systemd.io/PASSWORD_AGENTS),
 * which is how a unit started at boot reaches the console, plymouth or
 * systemd-tty-ask-password-agent. */
#ifndef BC_CLI_ASKPASS_H
#define BC_CLI_ASKPASS_H

#include <stdint.h>

#include "blockcrypt.h"

/* Where the agents look for questions. */
#define ASKPASS_DIR "/run/systemd/ask-password"

/* Ask for a secret.  PROMPT is shown on the terminal ("Enter passphrase:
 * "); without its trailing ": ", and followed by " for " and what comes
 * after the first ':' of ID, it is the agents' Message= ("Enter passphrase
 * for NAME").  ID (may be NULL) is the agents' Id= ("blockcrypt:NAME"),
 * which they use to tell questions apart.  TIMEOUT_S: give up after that
 * many seconds (-ETIME); 0 = wait for ever.  Without a terminal, the
 * agents are asked only when systemd runs the machine
 * (/run/systemd/system) and ASKPASS_DIR exists and is writable (root);
 * otherwise -EINVAL, "no terminal", as before there were agents.  An
 * answer the agent cancels is -ECANCELED.  0 and *OUT (the caller frees
 * it) on success. */
int cli_ask_password(const char *prompt, const char *id, uint32_t timeout_s, struct bc_secret **out);

#endif
