/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NBD protocol constants and wire layouts (NetworkBlockDevice doc/proto.md).
 * Wire structs are packed big-endian images of what crosses the socket; the
 * server converts them to host order in one place (nbd_conn.c). */
#ifndef BC_NBD_PROTO_H
#define BC_NBD_PROTO_H

#include <stdint.h>

#define NBD_MAGIC              UINT64_C(0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_IHAVEOPT           UINT64_C(0x49484156454F5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC          UINT64_C(0x3e889045565a9)
#define NBD_REQUEST_MAGIC      UINT32_C(0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC UINT32_C(0x67446698)
#define NBD_STRUCTURED_REPLY_MAGIC UINT32_C(0x668e33ef)

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7) /* only once structured replies are on */
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_CACHE        (1u << 10)

/* options */
#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8
#define NBD_OPT_LIST_META_CONTEXT 9
#define NBD_OPT_SET_META_CONTEXT  10

/* option replies */
#define NBD_REP_ACK    1
#define NBD_REP_SERVER 2
#define NBD_REP_INFO   3
#define NBD_REP_META_CONTEXT 4
#define NBD_REP_ERR_UNSUP    (UINT32_C(1) << 31 | 1)
#define NBD_REP_ERR_POLICY   (UINT32_C(1) << 31 | 2)
#define NBD_REP_ERR_INVALID  (UINT32_C(1) << 31 | 3)
#define NBD_REP_ERR_PLATFORM (UINT32_C(1) << 31 | 4)
#define NBD_REP_ERR_TLS_REQD (UINT32_C(1) << 31 | 5)
#define NBD_REP_ERR_UNKNOWN  (UINT32_C(1) << 31 | 6)
#define NBD_REP_ERR_SHUTDOWN (UINT32_C(1) << 31 | 7)
#define NBD_REP_ERR_TOO_BIG  (UINT32_C(1) << 31 | 9)

/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT      0
#define NBD_INFO_NAME        1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE  3

/* commands and command flags */
#define NBD_CMD_READ         0
#define NBD_CMD_WRITE        1
#define NBD_CMD_DISC         2
#define NBD_CMD_FLUSH        3
#define NBD_CMD_TRIM         4
#define NBD_CMD_CACHE        5
#define NBD_CMD_WRITE_ZEROES 6
#define NBD_CMD_BLOCK_STATUS 7
#define NBD_CMD_FLAG_FUA     (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF      (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE          (1u << 0)
#define NBD_REPLY_TYPE_NONE          0
#define NBD_REPLY_TYPE_OFFSET_DATA   1
#define NBD_REPLY_TYPE_OFFSET_HOLE   2
#define NBD_REPLY_TYPE_BLOCK_STATUS  5
#define NBD_REPLY_TYPE_ERROR         ((1u << 15) | 1)
#define NBD_REPLY_TYPE_ERROR_OFFSET  ((1u << 15) | 2)

/* the base:allocation metadata context */
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ID_BASE_ALLOCATION 1 /* the ID SET_META_CONTEXT gives it */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

/* errors */
#define NBD_EPERM     1
#define NBD_EIO       5
#define NBD_ENOMEM    12
#define NBD_EINVAL    22
#define NBD_ENOSPC    28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP   95
#define NBD_ESHUTDOWN 108

/* Limits this server enforces. */
#define NBD_MAX_PAYLOAD   (32u << 20)   /* READ/WRITE payload */
#define NBD_MAX_OPT_DATA  (64u << 10)   /* option data we will parse */
#define NBD_MAX_OPT_DISCARD (16u << 20) /* larger option data: hard disconnect */
#define NBD_MAX_STRING    4096u         /* the spec's longest string (a query) */
/* Extents in one BLOCK_STATUS reply: a client asking about a range of
 * many small extents gets the first ones (the spec allows fewer than the
 * whole range), so a reply never takes more than this much memory. */
#define NBD_MAX_EXTENTS   256u

struct bci_nbd_wire_option {          /* client -> server, option haggling */
	uint64_t magic;
	uint32_t option;
	uint32_t length;
} __attribute__((packed));

struct bci_nbd_wire_option_reply {    /* server -> client */
	uint64_t magic;
	uint32_t option;
	uint32_t type;
	uint32_t length;
} __attribute__((packed));

struct bci_nbd_wire_request {         /* client -> server, transmission */
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
} __attribute__((packed));

struct bci_nbd_wire_simple_reply {    /* server -> client */
	uint32_t magic;
	uint32_t error;
	uint64_t cookie;
} __attribute__((packed));

struct bci_nbd_wire_chunk {           /* server -> client, structured reply */
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint32_t length;
} __attribute__((packed));

/* A request in host byte order. */
struct bci_nbd_request {
	uint16_t flags;
	uint16_t type;
	uint64_t cookie;
	uint64_t offset;
	uint32_t length;
};

#endif
