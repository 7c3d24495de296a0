/* TCP-ENO (RFC 8547) in the kernel's own handshake: one BPF sock_ops program.
 *
 * Only sockets that opted in take part: an active socket whose SK_STORAGE entry userspace
 * created before connect() (mode A, with the exact ENO option its SYN carries), and a
 * listener whose entry was created before listen() (mode B_LISTEN, with its TEP preference).
 * Every other socket is left alone. Each socket's outcome is kept in its SK_STORAGE entry,
 * which userspace reads by fd. Per-network-namespace switches live in a map keyed by the netns
 * cookie. The layout of every map value is mirrored in tcpcrypt/kernel/records.py; docs/kernel.md
 * describes the whole API.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ENO_KIND 69
/* The drafts' profile (eno-03, the reference daemon's): experimental kind 253 with the ExID
 * 0x454E after the length byte, no b bit. Chosen per socket (A: its SYN option's kind; B: the
 * listener's FLAG_DRAFT). */
#define EXP_KIND 253
#define EXID_HI 0x45
#define EXID_LO 0x4E
#define TFO_KIND 34
#define OPT_MAX 40
#define BUF 64
#define MAX_TEPS 16
#define MAX_OFFERS 8
#define ID_LEN 9
#define SOL_TCP_ 6
#define TCP_SAVE_SYN_ 27
#define ENOMSG_ 42
#define ENOENT_ 2
#define TCP_CLOSE_ 7
#define TH_SYN 0x02
#define TH_ACK 0x10

enum { MODE_A = 1, MODE_B_LISTEN = 2, MODE_B = 3 };
enum { ST_PENDING = 1, ST_NEGOTIATED = 2, ST_FALLBACK = 3, ST_ERROR = 4 };
enum { ROLE_A = 1, ROLE_B = 2 };
enum {
	R_NONE = 0, R_NO_ENO_SYN = 1, R_NO_ENO_SYNACK = 2, R_NO_COMMON_TEP = 3,
	R_ROLE_CONFLICT = 4, R_NO_ENO_ACK = 5, R_MALFORMED = 6, R_SYNCOOKIE = 7, R_TFO = 8,
	R_NETNS_OFF = 9, R_STATE_LOST = 10, R_SIMULTANEOUS = 11, R_NO_ROOM = 12, R_BAD_CONFIG = 13,
};
enum {
	C_A_OFFERED, C_A_NEGOTIATED, C_A_FALLBACK, C_B_SYNACK_ENO, C_B_NEGOTIATED, C_B_FALLBACK,
	C_RESUMED, C_SYNCOOKIE, C_STATE_LOST, C_SIMULTANEOUS, C_TFO, C_NO_ROOM, C_COUNT = 16,
};
#define NETNS_DISABLED 1u
#define FLAG_B_SEGMENT_SEEN 1u
#define FLAG_RESUMED 2u
#define FLAG_DRAFT 4u

/* One socket's ENO record (userspace creates it for A and for a listener; the program
 * creates it for B's accepted sockets). */
struct eno_sock {
	__u8 mode;
	__u8 state;
	__u8 role;
	__u8 reason;
	__u8 syn_len;
	__u8 synack_len;
	__u8 n_teps;
	__u8 flags;
	__u8 syn[OPT_MAX];
	__u8 synack[OPT_MAX];
	__u8 teps[MAX_TEPS];
};

struct listener_key {
	__u64 netns;
	__u32 port;
	__u32 pad;
};

struct listener_cfg {
	__u8 n_teps;
	__u8 draft;
	__u8 pad[6];
	__u8 teps[MAX_TEPS];
};

struct conn_key {
	__u64 netns;
	__u32 family;
	__u16 lport;
	__u16 rport;
	__u32 laddr[4];
	__u32 raddr[4];
};

/* B's answer to one SYN, decided when the SYN-ACK is first written. */
struct pending {
	__u32 rcv_isn;
	__u32 snt_isn;
	__u8 synack_len;
	__u8 reason;
	__u8 resumed;
	__u8 pad;
	__u8 synack[OPT_MAX];
};

struct resume_key {
	__u64 netns;
	__u16 port;
	__u8 tep;
	__u8 a_id[ID_LEN];
	__u8 pad[4];
};

struct resume_val {
	__u8 b_id[ID_LEN];
	__u8 pad[3];
};

struct netns_cfg {
	__u32 flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct eno_sock);
} eno_sock SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listener_key);
	__type(value, struct listener_cfg);
} eno_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct pending);
} eno_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct resume_key);
	__type(value, struct resume_val);
} eno_resume SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct netns_cfg);
} eno_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} eno_stats SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&eno_stats, &index);

	if (value)
		*value += 1;
}

static __always_inline int netns_enabled(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_netns_cookie(skops);
	struct netns_cfg *cfg = bpf_map_lookup_elem(&eno_netns, &cookie);

	return !(cfg && (cfg->flags & NETNS_DISABLED));
}

static __always_inline void fill_conn_key(struct bpf_sock_ops *skops, struct conn_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->netns = bpf_get_netns_cookie(skops);
	key->family = skops->family;
	key->lport = (__u16)skops->local_port;
	key->rport = (__u16)bpf_ntohl(skops->remote_port);
	if (skops->family == 10) {
		key->laddr[0] = skops->local_ip6[0];
		key->laddr[1] = skops->local_ip6[1];
		key->laddr[2] = skops->local_ip6[2];
		key->laddr[3] = skops->local_ip6[3];
		key->raddr[0] = skops->remote_ip6[0];
		key->raddr[1] = skops->remote_ip6[1];
		key->raddr[2] = skops->remote_ip6[2];
		key->raddr[3] = skops->remote_ip6[3];
	} else {
		key->laddr[0] = skops->local_ip4;
		key->raddr[0] = skops->remote_ip4;
	}
}

/* The TEPs an ENO option offers: teps[i], with the offset and length of each one's data
 * inside buf. Returns the count, or -1 when the option is malformed. b gets the b bit of the
 * first global suboption, wherever it stands (later ones are ignored). A length byte
 * 100nnnnn is followed by a v=1 TEP byte and nnnnn+1 data bytes. Same reading as
 * tcpcrypt/eno_option.py. */
struct offers {
	__u8 tep[MAX_OFFERS];
	__u8 off[MAX_OFFERS];
	__u8 len[MAX_OFFERS];
	int count;
	int b;
	/* Parser scratch, kept in memory and reread each round (volatile): the verifier then
	 * sees an unknown position instead of one exact value per path, so its states merge.
	 * With the position in a register, global suboptions allowed anywhere made the loop
	 * exceed the verifier's 1M-instruction budget. */
	int pos;
	int global_seen;
};

struct optbuf {
	__u8 b[BUF];
};

#define RELOAD(field) (*(volatile int *)&(field))

/* The size of an ENO option's header: kind and length, plus the ExID in the drafts' profile. */
static __always_inline int eno_header(int draft)
{
	return draft ? 4 : 2;
}

/* Prepares buf to find the profile's ENO option with bpf_load_hdr_opt (kind 253 is searched
 * by kind, length 4 and its 2-byte ExID). */
static __always_inline void eno_search(struct optbuf *buf, int draft)
{
	if (draft) {
		buf->b[0] = EXP_KIND;
		buf->b[1] = 4;
		buf->b[2] = EXID_HI;
		buf->b[3] = EXID_LO;
	} else {
		buf->b[0] = ENO_KIND;
	}
}

/* Global (verified once, on its own), like the other __noinline functions below. */
__noinline int parse_option(const struct optbuf *opt, int length, int start,
			    struct offers *out)
{
	const __u8 *buf;
	int i;

	if (!opt || !out)
		return -1;
	buf = opt->b;
	out->count = 0;
	out->b = 0;
	out->pos = start == 4 ? 4 : 2;
	out->global_seen = 0;
	if (length < 2 || length > OPT_MAX || length < start)
		return -1;
	for (i = 0; i < OPT_MAX; i++) {
		int pos = RELOAD(out->pos), n = RELOAD(out->count);
		__u8 byte;

		if (pos < 2 || pos >= length)
			break;
		byte = buf[pos & (BUF - 1)];
		if (byte < 0x20) {
			if (!RELOAD(out->global_seen))
				out->b = byte & 1;
			out->global_seen = 1;
			out->pos = pos + 1;
			continue;
		}
		if (n < 0 || n >= MAX_OFFERS)
			return -1;
		if (byte < 0x80) {
			out->tep[n & (MAX_OFFERS - 1)] = byte;
			out->off[n & (MAX_OFFERS - 1)] = 0;
			out->len[n & (MAX_OFFERS - 1)] = 0;
			out->pos = pos + 1;
		} else if (byte < 0xa0) {
			/* the TEP byte, then nnnnn+1 data bytes */
			int size = (byte & 0x1f) + 2;
			__u8 tep;

			if (pos + 1 + size > length)
				return -1;
			tep = buf[(pos + 1) & (BUF - 1)];
			if (tep < 0xa0)
				return -1;
			out->tep[n & (MAX_OFFERS - 1)] = tep & 0x7f;
			out->off[n & (MAX_OFFERS - 1)] = pos + 2;
			out->len[n & (MAX_OFFERS - 1)] = size - 1;
			out->pos = pos + 1 + size;
		} else {
			out->tep[n & (MAX_OFFERS - 1)] = byte & 0x7f;
			out->off[n & (MAX_OFFERS - 1)] = pos + 1;
			out->len[n & (MAX_OFFERS - 1)] = length - pos - 1;
			out->pos = length;
		}
		out->count = n + 1;
	}
	return out->count;
}

__noinline int offered(const struct offers *offers, int tep)
{
	int i;

	if (!offers)
		return 0;
	for (i = 0; i < MAX_OFFERS; i++)
		if (i < offers->count && offers->tep[i] == tep)
			return 1;
	return 0;
}

/* --- host A ------------------------------------------------------------------------------ */

static __always_inline int a_connect(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	struct tcp_sock *tp;

	if (!st || st->mode != MODE_A)
		return 1;
	st->role = ROLE_A;
	if (st->syn[0] == EXP_KIND)
		st->flags |= FLAG_DRAFT;
	if (st->syn_len < 2 || st->syn_len > OPT_MAX || st->syn[1] != st->syn_len ||
	    !(st->syn[0] == ENO_KIND || (st->syn[0] == EXP_KIND && st->syn_len >= 4 &&
					 st->syn[2] == EXID_HI && st->syn[3] == EXID_LO))) {
		st->state = ST_FALLBACK;
		st->reason = R_BAD_CONFIG;
		return 1;
	}
	if (!netns_enabled(skops)) {
		st->state = ST_FALLBACK;
		st->reason = R_NETNS_OFF;
		return 1;
	}
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp && tp->fastopen_req) {
		st->state = ST_FALLBACK;
		st->reason = R_TFO;
		count(C_TFO);
		return 1;
	}
	st->state = ST_PENDING;
	count(C_A_OFFERED);
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
	return 1;
}

static __always_inline void a_fall_back(struct bpf_sock_ops *skops, struct eno_sock *st,
					__u8 reason)
{
	st->state = ST_FALLBACK;
	st->reason = reason;
	count(C_A_FALLBACK);
	bpf_sock_ops_cb_flags_set(skops, 0);
}

static __always_inline int a_established(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	struct offers mine = {}, theirs = {};
	struct optbuf buf = {};
	int length, i, common = 0, draft;

	if (!st || st->mode != MODE_A || st->state != ST_PENDING)
		return 1;
	draft = !!(st->flags & FLAG_DRAFT);
	eno_search(&buf, draft);
	length = bpf_load_hdr_opt(skops, buf.b, OPT_MAX, 0);
	if (length == -ENOMSG_) {
		a_fall_back(skops, st, R_NO_ENO_SYNACK);
		return 1;
	}
	if (length < 2 || length > OPT_MAX) {
		a_fall_back(skops, st, R_MALFORMED);
		return 1;
	}
	__builtin_memcpy(st->synack, buf.b, OPT_MAX);
	st->synack_len = length;
	if (parse_option(&buf, length, eno_header(draft), &theirs) < 0) {
		a_fall_back(skops, st, R_MALFORMED);
		return 1;
	}
	if (!draft && !theirs.b) {
		a_fall_back(skops, st, R_ROLE_CONFLICT);
		return 1;
	}
	__builtin_memset(&buf, 0, sizeof(buf));
	__builtin_memcpy(buf.b, st->syn, OPT_MAX);
	if (parse_option(&buf, st->syn_len, eno_header(draft), &mine) < 0) {
		a_fall_back(skops, st, R_BAD_CONFIG);
		return 1;
	}
	for (i = 0; i < MAX_OFFERS; i++)
		if (i < theirs.count && offered(&mine, theirs.tep[i]))
			common = 1;
	if (!common) {
		a_fall_back(skops, st, R_NO_COMMON_TEP);
		return 1;
	}
	st->state = ST_NEGOTIATED;
	count(C_A_NEGOTIATED);
	/* ENO goes on A's segments (the first ACK first) until B's first non-SYN segment. */
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
					 BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG);
	return 1;
}

/* Whether B's non-SYN segment proves that B left SYN-RECEIVED: it carries data, or it
 * acknowledges something of ours past the SYN. A bare ACK of our SYN alone is also what B's
 * kernel sends as a challenge ACK while it still waits for our ACK (e.g. when an off-path
 * sender spoofs a SYN on this connection's 4-tuple): stopping ENO on it would let our next
 * segment complete B's handshake without ENO, and B fall back while we negotiated. */
static __always_inline int b_left_syn_recv(struct bpf_sock_ops *skops)
{
	struct tcphdr *th = (struct tcphdr *)(long)skops->skb_data;
	void *end = (void *)(long)skops->skb_data_end;

	if ((void *)(th + 1) > end)
		return 1; /* cannot tell: the RFC's rule */
	if (skops->skb_len > (__u32)th->doff * 4)
		return 1;
	return bpf_ntohl(th->ack_seq) != skops->snd_una;
}

static __always_inline int a_parse(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);

	if (!st || st->mode != MODE_A)
		return 1;
	if (skops->skb_tcp_flags & TH_SYN)
		return 1; /* a retransmitted SYN-ACK: keep writing ENO */
	if (!b_left_syn_recv(skops))
		return 1; /* may be B's challenge ACK while it waits for our ACK: keep writing ENO */
	st->flags |= FLAG_B_SEGMENT_SEEN;
	bpf_sock_ops_cb_flags_set(skops, 0);
	return 1;
}

/* The option A writes on this segment: its SYN option, an empty ENO option after the
 * SYN-ACK, or none. Refuses simultaneous open (an A socket answering a SYN). */
static __always_inline int a_option_length(struct bpf_sock_ops *skops, struct eno_sock *st)
{
	__u32 flags = skops->skb_tcp_flags;

	if ((flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK)) {
		if (st->state == ST_PENDING || st->state == ST_NEGOTIATED) {
			st->state = ST_FALLBACK;
			st->reason = R_SIMULTANEOUS;
			count(C_SIMULTANEOUS);
		}
		return 0;
	}
	if (flags & TH_SYN)
		return st->state == ST_PENDING ? st->syn_len : 0;
	if (st->state == ST_NEGOTIATED && !(st->flags & FLAG_B_SEGMENT_SEEN))
		return eno_header(st->flags & FLAG_DRAFT);
	return 0;
}

static __always_inline int a_write_len(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	int length;

	if (!st || st->mode != MODE_A)
		return 1;
	length = a_option_length(skops, st);
	if (length >= 2 && length <= OPT_MAX && bpf_reserve_hdr_opt(skops, length, 0) != 0) {
		if (st->state == ST_PENDING) {
			st->state = ST_FALLBACK;
			st->reason = R_NO_ROOM;
			count(C_NO_ROOM);
		}
	}
	return 1;
}

static __always_inline int a_write(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	__u8 empty[2] = {ENO_KIND, 2};
	__u8 empty_draft[4] = {EXP_KIND, 4, EXID_HI, EXID_LO};
	__u32 flags = skops->skb_tcp_flags;
	__u32 length;

	if (!st || st->mode != MODE_A)
		return 1;
	if ((flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK))
		return 1;
	if (flags & TH_SYN) {
		length = st->syn_len - 2;
		if (st->state == ST_PENDING && length <= OPT_MAX - 2)
			bpf_store_hdr_opt(skops, st->syn, length + 2, 0);
		return 1;
	}
	if (st->state != ST_NEGOTIATED || (st->flags & FLAG_B_SEGMENT_SEEN))
		return 1;
	if (st->flags & FLAG_DRAFT)
		bpf_store_hdr_opt(skops, empty_draft, 4, 0);
	else
		bpf_store_hdr_opt(skops, empty, 2, 0);
	return 1;
}

/* --- host B ------------------------------------------------------------------------------ */

static __always_inline int b_listen(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	struct listener_key key = {};
	struct listener_cfg cfg = {};
	int one = 1, i;

	if (!st || st->mode != MODE_B_LISTEN)
		return 1;
	if (st->n_teps == 0 || st->n_teps > MAX_TEPS) {
		st->state = ST_FALLBACK;
		st->reason = R_BAD_CONFIG;
		return 1;
	}
	key.netns = bpf_get_netns_cookie(skops);
	key.port = skops->local_port;
	cfg.n_teps = st->n_teps;
	cfg.draft = !!(st->flags & FLAG_DRAFT);
	for (i = 0; i < MAX_TEPS; i++)
		cfg.teps[i] = st->teps[i];
	if (bpf_setsockopt(skops, SOL_TCP_, TCP_SAVE_SYN_, &one, sizeof(one)) != 0 ||
	    bpf_map_update_elem(&eno_listeners, &key, &cfg, BPF_ANY) != 0) {
		st->state = ST_ERROR;
		st->reason = R_NO_ROOM;
		return 1;
	}
	st->role = ROLE_B;
	st->state = ST_PENDING; /* listening with ENO */
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
					 BPF_SOCK_OPS_STATE_CB_FLAG);
	return 1;
}

static __always_inline int b_listener_closed(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct eno_sock *st;
	struct listener_key key = {};

	if (skops->args[1] != TCP_CLOSE_)
		return 1;
	st = bpf_sk_storage_get(&eno_sock, sk, 0, 0);
	if (!st || st->mode != MODE_B_LISTEN)
		return 1;
	key.netns = bpf_get_netns_cookie(skops);
	key.port = skops->local_port;
	bpf_map_delete_elem(&eno_listeners, &key);
	st->state = ST_FALLBACK;
	return 1;
}

/* The SYN-ACK option for this request, decided once: resume if A named an identifier that
 * userspace registered (consumed here, once), else B's first preferred TEP that A offered. */
__noinline int b_decide(struct bpf_sock_ops *skops, struct listener_cfg *cfg, struct pending *out)
{
	struct offers theirs = {};
	struct resume_key rkey = {};
	struct resume_val *rval;
	struct optbuf buf = {};
	int length, i, j, k, draft;

	if (!cfg || !out)
		return 0;
	draft = cfg->draft ? 1 : 0;

	buf.b[0] = TFO_KIND;
	if (bpf_load_hdr_opt(skops, buf.b, OPT_MAX, BPF_LOAD_HDR_OPT_TCP_SYN) >= 0) {
		out->reason = R_TFO;
		count(C_TFO);
		return 0;
	}
	__builtin_memset(&buf, 0, sizeof(buf));
	eno_search(&buf, draft);
	length = bpf_load_hdr_opt(skops, buf.b, OPT_MAX, BPF_LOAD_HDR_OPT_TCP_SYN);
	if (length == -ENOMSG_) {
		out->reason = R_NO_ENO_SYN;
		return 0;
	}
	if (length < 2 || length > OPT_MAX ||
	    parse_option(&buf, length, eno_header(draft), &theirs) < 0) {
		out->reason = R_MALFORMED;
		return 0;
	}
	if (draft) {
		/* eno-03: no b bit and no resumption here; B answers its first preferred TEP. */
		for (j = 0; j < MAX_TEPS; j++) {
			__u8 tep = cfg->teps[j];

			if (j >= cfg->n_teps)
				break;
			if (!offered(&theirs, tep))
				continue;
			out->synack[0] = EXP_KIND;
			out->synack[1] = 5;
			out->synack[2] = EXID_HI;
			out->synack[3] = EXID_LO;
			out->synack[4] = tep;
			out->synack_len = 5;
			return 0;
		}
		out->reason = R_NO_COMMON_TEP;
		return 0;
	}
	if (theirs.b) {
		out->reason = R_ROLE_CONFLICT; /* A asked for role B too: equal b bits */
		return 0;
	}
	rkey.netns = bpf_get_netns_cookie(skops);
	rkey.port = (__u16)skops->local_port;
	for (i = 0; i < MAX_OFFERS; i++) {
		if (i >= theirs.count || theirs.len[i] != ID_LEN)
			continue;
		rkey.tep = theirs.tep[i];
		for (k = 0; k < ID_LEN; k++)
			rkey.a_id[k] = buf.b[(theirs.off[i] + k) & (BUF - 1)];
		rval = bpf_map_lookup_elem(&eno_resume, &rkey);
		if (!rval)
			continue;
		__builtin_memcpy(out->synack + 4, rval->b_id, ID_LEN);
		/* Single use: only the deletion that succeeds may resume. */
		if (bpf_map_delete_elem(&eno_resume, &rkey) != 0)
			continue;
		out->synack[0] = ENO_KIND;
		out->synack[1] = 4 + ID_LEN;
		out->synack[2] = 0x01;
		out->synack[3] = rkey.tep | 0x80;
		out->synack_len = 4 + ID_LEN;
		out->resumed = 1;
		count(C_RESUMED);
		return 0;
	}
	for (j = 0; j < MAX_TEPS; j++) {
		__u8 tep = cfg->teps[j];

		if (j >= cfg->n_teps)
			break;
		if (!offered(&theirs, tep))
			continue;
		out->synack[0] = ENO_KIND;
		out->synack[1] = 4;
		out->synack[2] = 0x01;
		out->synack[3] = tep;
		out->synack_len = 4;
		return 0;
	}
	out->reason = R_NO_COMMON_TEP;
	return 0;
}

static __always_inline struct pending *b_pending(struct bpf_sock_ops *skops, struct bpf_sock *sk,
						   int create)
{
	struct listener_key lkey = {};
	struct listener_cfg *cfg;
	struct conn_key key;
	struct pending fresh = {}, *found;
	struct tcp_request_sock *treq = sk ? bpf_skc_to_tcp_request_sock(sk) : 0;
	__u32 rcv_isn = 0, snt_isn = 0;

	if (treq) {
		rcv_isn = treq->rcv_isn;
		snt_isn = treq->snt_isn;
	}
	fill_conn_key(skops, &key);
	found = bpf_map_lookup_elem(&eno_pending, &key);
	if (found && found->rcv_isn == rcv_isn && found->snt_isn == snt_isn)
		return found;
	if (!create)
		return 0;
	lkey.netns = key.netns;
	lkey.port = skops->local_port;
	cfg = bpf_map_lookup_elem(&eno_listeners, &lkey);
	if (!cfg)
		return 0;
	fresh.rcv_isn = rcv_isn;
	fresh.snt_isn = snt_isn;
	if (!netns_enabled(skops))
		fresh.reason = R_NETNS_OFF;
	else
		b_decide(skops, cfg, &fresh);
	if (bpf_map_update_elem(&eno_pending, &key, &fresh, BPF_ANY) != 0)
		return 0;
	return bpf_map_lookup_elem(&eno_pending, &key);
}

static __always_inline int b_synack_len(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct pending *p;
	__u32 length;

	if (skops->args[0] == BPF_WRITE_HDR_TCP_SYNACK_COOKIE) {
		count(C_SYNCOOKIE);
		return 1; /* no saved SYN, no state: no ENO, both ends fall back */
	}
	p = b_pending(skops, sk, 1);
	if (!p)
		return 1;
	length = p->synack_len;
	if (length >= 2 && length <= OPT_MAX && bpf_reserve_hdr_opt(skops, length, 0) != 0) {
		p->synack_len = 0;
		p->resumed = 0;
		p->reason = R_NO_ROOM;
		count(C_NO_ROOM);
	}
	return 1;
}

static __always_inline int b_synack_write(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct pending *p;
	__u32 length;

	if (skops->args[0] == BPF_WRITE_HDR_TCP_SYNACK_COOKIE)
		return 1;
	p = b_pending(skops, sk, 0);
	if (!p)
		return 1;
	length = p->synack_len - 2; /* in [0, 38] after the check: the verifier sees [2, 40] */
	if (length > OPT_MAX - 2)
		return 1;
	if (bpf_store_hdr_opt(skops, p->synack, length + 2, 0) == 0)
		count(C_B_SYNACK_ENO);
	return 1;
}

static __always_inline int b_established(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
	struct listener_key lkey = {};
	struct conn_key key;
	struct pending *p;
	struct listener_cfg *cfg;
	struct eno_sock *st;
	struct optbuf ack = {};
	int length, draft;

	fill_conn_key(skops, &key);
	lkey.netns = key.netns;
	lkey.port = skops->local_port;
	cfg = bpf_map_lookup_elem(&eno_listeners, &lkey);
	if (!cfg)
		return 1; /* not an opted-in listener's connection */
	draft = cfg->draft ? 1 : 0;
	bpf_sock_ops_cb_flags_set(skops, 0);
	st = bpf_sk_storage_get(&eno_sock, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	st->mode = MODE_B;
	st->role = ROLE_B;
	if (draft) {
		st->flags |= FLAG_DRAFT;
		st->syn[0] = EXP_KIND;
		st->syn[1] = 4;
		st->syn[2] = EXID_HI;
		st->syn[3] = EXID_LO;
	} else {
		st->syn[0] = ENO_KIND;
	}
	length = bpf_load_hdr_opt(skops, st->syn, OPT_MAX, BPF_LOAD_HDR_OPT_TCP_SYN);
	if (length >= 2 && length <= OPT_MAX)
		st->syn_len = length;
	else
		__builtin_memset(st->syn, 0, OPT_MAX);
	p = bpf_map_lookup_elem(&eno_pending, &key);
	if (!p) {
		st->state = ST_FALLBACK;
		if (length == -ENOENT_)
			st->reason = R_SYNCOOKIE;
		else if (length == -ENOMSG_)
			st->reason = R_NO_ENO_SYN;
		else {
			/* ENO in the SYN but B's answer is unknown: A may believe ENO succeeded. */
			eno_search(&ack, draft);
			if (bpf_load_hdr_opt(skops, ack.b, OPT_MAX, 0) >= 2) {
				st->state = ST_ERROR;
				count(C_STATE_LOST);
			}
			st->reason = R_STATE_LOST;
		}
		count(C_B_FALLBACK);
		return 1;
	}
	st->synack_len = p->synack_len;
	__builtin_memcpy(st->synack, p->synack, OPT_MAX);
	if (p->resumed)
		st->flags |= FLAG_RESUMED;
	st->reason = p->reason;
	bpf_map_delete_elem(&eno_pending, &key);
	if (st->synack_len < 2) {
		st->state = ST_FALLBACK;
		count(C_B_FALLBACK);
		return 1;
	}
	eno_search(&ack, draft);
	if (bpf_load_hdr_opt(skops, ack.b, OPT_MAX, 0) >= 2) {
		st->state = ST_NEGOTIATED;
		count(C_B_NEGOTIATED);
	} else {
		st->state = ST_FALLBACK;
		st->reason = R_NO_ENO_ACK;
		count(C_B_FALLBACK);
	}
	return 1;
}

/* --- dispatch ---------------------------------------------------------------------------- */

SEC("sockops")
int tcpcrypt_eno(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	int full = skops->is_fullsock;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		return sk ? a_connect(skops, sk) : 1;
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		return sk ? b_listen(skops, sk) : 1;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		return sk ? a_established(skops, sk) : 1;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		return sk ? b_established(skops, sk) : 1;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		return sk ? a_parse(skops, sk) : 1;
	case BPF_SOCK_OPS_STATE_CB:
		return sk ? b_listener_closed(skops, sk) : 1;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if (!full)
			return b_synack_len(skops, sk);
		return sk ? a_write_len(skops, sk) : 1;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (!full)
			return b_synack_write(skops, sk);
		return sk ? a_write(skops, sk) : 1;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
