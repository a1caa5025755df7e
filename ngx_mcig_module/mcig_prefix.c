/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The hash: 16 bytes at a time folded into 64 bits with one 64x64->128
 * multiply (as wyhash does), each block started from the previous block's
 * hash, ended by murmur3's finaliser.  The 16-byte lanes of a block go in
 * turn to two states, so that two multiplies are in flight at once: the
 * chain of one state is what bounds the speed.  It is not meant to resist
 * an adversary: a collision can only misplace one request's affinity.
 *
 * The index: one open-addressing table (linear probing, backward-shift
 * deletion, at most 3/4 full) maps a block hash to the set of members
 * holding it, so that matching every member costs one lookup per block.
 * Each member has a ring of the hashes it holds, in the order they came,
 * swept by a clock hand: a hash credited again since the hand last passed
 * (its ref bit) gets a second chance, so eviction is close to LRU per
 * member, and costs one step per block while blocks are not reused.  Every
 * hash in the table is held by one member at least, and each holding has
 * exactly one ring record, so the table can never fill up.
 */

#include <string.h>

#include "mcig_prefix.h"


/* wyhash's secrets; any odd constants with mixed bits would do */
#define K0  0xa0761d6478bd642fULL
#define K1  0xe7037ed1a0b428dbULL
#define K2  0x8ebc6af09c88c6e3ULL
#define K3  0x589965cc75374cc3ULL

/* murmur3's finaliser constants and their inverses modulo 2^64 */
#define F1      0xff51afd7ed558ccdULL
#define F2      0xc4ceb9fe1a85ec53ULL
#define F1_INV  0x4f74430c22a54005ULL
#define F2_INV  0x9cb4b2f8129337dbULL

#define INDEX_MAGIC   0x6d636970u        /* "mcip" */
#define ENTRIES_MAX   (1u << 24)

/*
 * Ref bits the clock hand may clear in one credit, besides one per block:
 * each clear is a table lookup under the zone's mutex, and a member whose
 * whole ring was reused would cost a lap of the ring.  Past it the record
 * under the hand goes, reused or not.
 */
#define CLEARS        1024

/* records a credit protects from its own evictions, at most */
#define FRESH         MCIG_PREFIX_MAX_BLOCKS

/* blocks looked up ahead of the one matched */
#define PREFETCH      4


struct mcig_prefix_index_s {
    uint32_t    magic;
    uint32_t    members;
    uint32_t    entries;          /* ring size of each member */
    uint32_t    words;            /* uint64_t words of a member set */
    uint64_t    slots;
    uint64_t    used;             /* hashes in the table */
    uint64_t    table;            /* offsets from the index, in bytes */
    uint64_t    rings;
    uint64_t    records;
    uint64_t    pad[3];
};


typedef struct {
    uint32_t    count;            /* records, at most entries */
    uint32_t    hand;             /* oldest record; 0 until the ring fills */
} ring_t;


static inline uint64_t
mum(uint64_t a, uint64_t b)
{
    unsigned __int128  r = (unsigned __int128) a * b;

    return (uint64_t) r ^ (uint64_t) (r >> 64);
}


static inline uint64_t
fmix(uint64_t x)
{
    x ^= x >> 33;
    x *= F1;
    x ^= x >> 33;
    x *= F2;
    x ^= x >> 33;

    return x;
}


/* x ^= x >> 33 is its own inverse, as 33 >= 64 / 2 */
static inline uint64_t
unfmix(uint64_t x)
{
    x ^= x >> 33;
    x *= F2_INV;
    x ^= x >> 33;
    x *= F1_INV;
    x ^= x >> 33;

    return x;
}


static inline uint64_t
read64(const uint8_t *p)
{
    uint64_t  v;

    memcpy(&v, p, 8);
    return v;
}


/*
 * The state is xored back in so that a lane that zeroes one factor of the
 * product does not wipe out what came before (the chain above all).
 */
static inline uint64_t
lane(uint64_t state, const uint8_t *p)
{
    return mum(read64(p) ^ K1, read64(p + 8) ^ state) ^ state;
}


uint64_t
mcig_hash64(const void *data, size_t len, uint64_t seed)
{
    size_t          n;
    uint8_t         tail[16];
    uint64_t        state;
    const uint8_t  *p = data;

    state = seed ^ K0;

    for (n = len; n >= 16; n -= 16, p += 16) {
        state = lane(state, p);
    }

    memset(tail, 0, sizeof(tail));
    memcpy(tail, p, n);
    state = lane(state, tail);

    return fmix(state ^ K2 ^ (uint64_t) len);
}


/* --- block hashing ---------------------------------------------------- */

void
mcig_prefix_hasher_init(mcig_prefix_hasher_t *h, uint32_t block_size,
    uint32_t max_blocks, uint64_t *out)
{
    block_size &= ~15u;

    if (block_size < MCIG_PREFIX_BLOCK_MIN) {
        block_size = MCIG_PREFIX_BLOCK_MIN;

    } else if (block_size > MCIG_PREFIX_BLOCK_MAX) {
        block_size = MCIG_PREFIX_BLOCK_MAX;
    }

    h->block_size = block_size;
    h->max_blocks = out ? max_blocks : 0;
    h->out = out;

    mcig_prefix_hasher_reset(h);
}


void
mcig_prefix_hasher_reset(mcig_prefix_hasher_t *h)
{
    h->chain = K3;
    h->state[0] = K3 ^ K0;
    h->state[1] = K3 ^ K1;
    h->seed = 0;
    h->nblocks = 0;
    h->fill = 0;
    h->npend = 0;
    h->seeded = 0;
}


/*
 * Hashes whole 16-byte lanes of p, as many as len holds, and returns the
 * bytes used.  The states live in locals here: kept in *h, they would make
 * a round trip through memory per lane (out[] may alias them), which costs
 * more than the multiply.  Lane j of a block goes to state j % 2.
 */
static size_t
hash_lanes(mcig_prefix_hasher_t *h, const uint8_t *p, size_t len)
{
    uint32_t        k, fill, nblocks, bsize, max;
    uint64_t        s0, s1, chain, *out;
    const uint8_t  *start = p;

    s0 = h->state[0];
    s1 = h->state[1];
    chain = h->chain;
    fill = h->fill;
    nblocks = h->nblocks;
    bsize = h->block_size;
    max = h->max_blocks;
    out = h->out;

    while (len >= 16 && nblocks < max) {

        if (fill == 0 && len >= bsize) {
            /* a whole block: two multiplies in flight */
            for (k = 0; k + 32 <= bsize; k += 32) {
                s0 = lane(s0, p + k);
                s1 = lane(s1, p + k + 16);
            }

            if (k < bsize) {
                s0 = lane(s0, p + k);
            }

            p += bsize;
            len -= bsize;

        } else {
            if ((fill / 16) & 1) {
                s1 = lane(s1, p);

            } else {
                s0 = lane(s0, p);
            }

            p += 16;
            len -= 16;
            fill += 16;

            if (fill < bsize) {
                continue;
            }
        }

        chain = fmix(s0 ^ mum(s1 ^ K2, K3));
        out[nblocks++] = chain;
        fill = 0;
        s0 = chain ^ K0;
        s1 = chain ^ K1;
    }

    h->state[0] = s0;
    h->state[1] = s1;
    h->chain = chain;
    h->fill = fill;
    h->nblocks = nblocks;

    return (size_t) (p - start);
}


void
mcig_prefix_hasher_feed(mcig_prefix_hasher_t *h, const uint8_t *p,
    size_t len)
{
    size_t  n;

    if (h->nblocks >= h->max_blocks) {
        return;
    }

    if (h->npend) {
        n = 16 - h->npend;

        if (n > len) {
            n = len;
        }

        memcpy(h->pend + h->npend, p, n);
        h->npend += (uint32_t) n;
        p += n;
        len -= n;

        if (h->npend < 16) {
            return;
        }

        h->npend = 0;
        hash_lanes(h, h->pend, 16);
    }

    n = hash_lanes(h, p, len);

    if (h->nblocks >= h->max_blocks) {
        return;
    }

    memcpy(h->pend, p + n, len - n);
    h->npend = (uint32_t) (len - n);
}


uint32_t
mcig_prefix_hasher_seed(mcig_prefix_hasher_t *h, uint64_t seed)
{
    uint32_t  i;

    for (i = 0; i < h->nblocks; i++) {
        uint64_t  chain = h->out[i];

        if (h->seeded) {
            chain = unfmix(chain) ^ h->seed;
        }

        h->out[i] = fmix(chain ^ seed);
    }

    h->seed = seed;
    h->seeded = 1;

    return h->nblocks;
}


uint64_t
mcig_prefix_seed(const uint8_t *model, size_t len, uint64_t salt)
{
    return mcig_hash64(model, len, salt);
}


/* --- index ------------------------------------------------------------- */

/* 0 marks an empty slot: the hash 0 is stored as 1 */
#define KEY(h)  ((h) ? (h) : 1)


static inline uint64_t
stride(const mcig_prefix_index_t *idx)
{
    return 1 + 2 * (uint64_t) idx->words;
}


static inline uint64_t *
slot_at(const mcig_prefix_index_t *idx, uint64_t i)
{
    return (uint64_t *) ((char *) idx + idx->table) + i * stride(idx);
}


static inline ring_t *
ring_of(const mcig_prefix_index_t *idx, uint32_t member)
{
    return (ring_t *) ((char *) idx + idx->rings) + member;
}


static inline uint64_t *
records_of(const mcig_prefix_index_t *idx, uint32_t member)
{
    return (uint64_t *) ((char *) idx + idx->records)
           + (uint64_t) member * idx->entries;
}


/* the first slot to probe: hashes are uniform, so a multiply spreads them */
static inline uint64_t
home(const mcig_prefix_index_t *idx, uint64_t key)
{
    return (uint64_t) (((unsigned __int128) key * idx->slots) >> 64);
}


static inline uint64_t
next_slot(const mcig_prefix_index_t *idx, uint64_t i)
{
    return (i + 1 == idx->slots) ? 0 : i + 1;
}


/* the slot holding key, or -1 */
static int64_t
find(const mcig_prefix_index_t *idx, uint64_t key)
{
    uint64_t   i;
    uint64_t  *e;

    for (i = home(idx, key); /* void */; i = next_slot(idx, i)) {
        e = slot_at(idx, i);

        if (e[0] == key) {
            return (int64_t) i;
        }

        if (e[0] == 0) {
            return -1;
        }
    }
}


static uint64_t
insert(mcig_prefix_index_t *idx, uint64_t key)
{
    uint64_t   i;
    uint64_t  *e;

    for (i = home(idx, key); /* void */; i = next_slot(idx, i)) {
        e = slot_at(idx, i);

        if (e[0] == 0) {
            break;
        }
    }

    memset(e, 0, stride(idx) * sizeof(uint64_t));
    e[0] = key;
    idx->used++;

    return i;
}


/* backward-shift deletion: no tombstones, probe chains stay short */
static void
erase(mcig_prefix_index_t *idx, uint64_t i)
{
    uint64_t   j, h;
    uint64_t  *e;
    size_t     sz;

    sz = stride(idx) * sizeof(uint64_t);

    for (j = next_slot(idx, i); /* void */; j = next_slot(idx, j)) {
        e = slot_at(idx, j);

        if (e[0] == 0) {
            break;
        }

        h = home(idx, e[0]);

        /* an entry whose home lies cyclically in (i, j] stays */
        if ((i <= j) ? (i < h && h <= j) : (i < h || h <= j)) {
            continue;
        }

        memcpy(slot_at(idx, i), e, sz);
        i = j;
    }

    memset(slot_at(idx, i), 0, sz);
    idx->used--;
}


static inline int
bit_get(const uint64_t *set, uint32_t m)
{
    return (set[m / 64] >> (m % 64)) & 1;
}


static inline void
bit_set(uint64_t *set, uint32_t m)
{
    set[m / 64] |= 1ULL << (m % 64);
}


static inline void
bit_clear(uint64_t *set, uint32_t m)
{
    set[m / 64] &= ~(1ULL << (m % 64));
}


static int
set_empty(const uint64_t *set, uint32_t words)
{
    uint32_t  w;

    for (w = 0; w < words; w++) {
        if (set[w]) {
            return 0;
        }
    }

    return 1;
}


size_t
mcig_prefix_index_size(uint32_t members, uint32_t entries)
{
    uint64_t  words, slots, size;

    if (members == 0 || members > MCIG_PREFIX_MEMBERS_MAX
        || entries == 0 || entries > ENTRIES_MAX)
    {
        return 0;
    }

    words = (members + 63) / 64;
    slots = (uint64_t) members * entries;
    slots += slots / 3 + 1;

    size = sizeof(mcig_prefix_index_t)
           + slots * (1 + 2 * words) * sizeof(uint64_t)
           + (uint64_t) members * sizeof(ring_t)
           + (uint64_t) members * entries * sizeof(uint64_t);

    return (size > (uint64_t) SIZE_MAX) ? 0 : (size_t) size;
}


mcig_prefix_index_t *
mcig_prefix_index_init(void *mem, size_t size, uint32_t members,
    uint32_t entries)
{
    size_t                need;
    uint64_t              slots;
    mcig_prefix_index_t  *idx;

    need = mcig_prefix_index_size(members, entries);

    if (need == 0 || size < need || mem == NULL
        || ((uintptr_t) mem & 7) != 0)
    {
        return NULL;
    }

    slots = (uint64_t) members * entries;
    slots += slots / 3 + 1;

    idx = mem;
    idx->magic = INDEX_MAGIC;
    idx->members = members;
    idx->entries = entries;
    idx->words = (members + 63) / 64;
    idx->slots = slots;
    idx->used = 0;
    idx->table = sizeof(mcig_prefix_index_t);
    idx->rings = idx->table + slots * stride(idx) * sizeof(uint64_t);
    idx->records = idx->rings + (uint64_t) members * sizeof(ring_t);
    memset(idx->pad, 0, sizeof(idx->pad));

    /* the records need no clearing: count says how many are valid */
    memset((char *) idx + idx->table, 0, idx->records - idx->table);

    return idx;
}


uint32_t
mcig_prefix_index_members(const mcig_prefix_index_t *idx)
{
    return idx->members;
}


uint32_t
mcig_prefix_index_entries(const mcig_prefix_index_t *idx)
{
    return idx->entries;
}


uint32_t
mcig_prefix_held(const mcig_prefix_index_t *idx, uint32_t member)
{
    return (member < idx->members) ? ring_of(idx, member)->count : 0;
}


uint32_t
mcig_prefix_match(const mcig_prefix_index_t *idx, const uint64_t *hashes,
    uint32_t n, uint32_t member)
{
    int64_t   i;
    uint32_t  k;

    if (member >= idx->members) {
        return 0;
    }

    for (k = 0; k < n; k++) {
        i = find(idx, KEY(hashes[k]));

        if (i < 0 || !bit_get(slot_at(idx, (uint64_t) i) + 1, member)) {
            break;
        }
    }

    return k;
}


uint32_t
mcig_prefix_match_all(const mcig_prefix_index_t *idx, const uint64_t *hashes,
    uint32_t n, uint32_t *counts)
{
    int64_t    i;
    uint32_t   k, w, m, words;
    uint64_t   alive[(MCIG_PREFIX_MEMBERS_MAX + 63) / 64], d, any;
    uint64_t  *held;

    words = idx->words;

    for (w = 0; w < words; w++) {
        alive[w] = ~0ULL;
    }

    if (idx->members % 64) {
        alive[words - 1] = (1ULL << (idx->members % 64)) - 1;
    }

    memset(counts, 0, idx->members * sizeof(uint32_t));

    for (k = 0; k < n; k++) {

#if defined(__GNUC__)
        /* the hashes are all known: start fetching the next slots now */
        if (k + PREFETCH < n) {
            __builtin_prefetch(slot_at(idx,
                                   home(idx, KEY(hashes[k + PREFETCH]))));
        }
#endif

        i = find(idx, KEY(hashes[k]));

        if (i < 0) {
            break;
        }

        held = slot_at(idx, (uint64_t) i) + 1;
        any = 0;

        for (w = 0; w < words; w++) {
            /* members dropping out here hold blocks 0..k-1 */
            for (d = alive[w] & ~held[w]; d; d &= d - 1) {
                m = w * 64 + (uint32_t) __builtin_ctzll(d);
                counts[m] = k;
            }

            alive[w] &= held[w];
            any |= alive[w];
        }

        if (!any) {
            return k;
        }
    }

    for (w = 0; w < words; w++) {
        for (d = alive[w]; d; d &= d - 1) {
            m = w * 64 + (uint32_t) __builtin_ctzll(d);
            counts[m] = k;
        }
    }

    return k;
}


/* the clock hand during one credit */
typedef struct {
    uint32_t        budget;       /* ref bits it may still clear */
    uint32_t        moved;        /* records it went past */
    uint32_t        remarked;
    const uint64_t *done;         /* the credit's blocks so far */
    uint32_t        ndone;
} sweep_t;


static void
advance(mcig_prefix_index_t *idx, ring_t *r, sweep_t *sw)
{
    r->hand = (r->hand + 1 == idx->entries) ? 0 : r->hand + 1;
    sw->moved++;
}


/*
 * Once the hand has gone round the whole ring during one credit, every
 * record was passed: the older ones were cleared or evicted, and so were
 * this credit's own blocks, reused or new.  These get their bit back, once,
 * so that the hand takes older records next, as an LRU would, rather than
 * the blocks the request just used.
 */
static void
remark(mcig_prefix_index_t *idx, uint32_t member, sweep_t *sw)
{
    int64_t    i;
    uint32_t   k;
    uint64_t  *e;

    sw->remarked = 1;

    for (k = 0; k < sw->ndone; k++) {
        i = find(idx, KEY(sw->done[k]));

        if (i >= 0) {
            e = slot_at(idx, (uint64_t) i);

            if (bit_get(e + 1, member)) {
                bit_set(e + 1 + idx->words, member);
            }
        }
    }
}


/*
 * Frees the record under the clock hand, which stays there: the caller puts
 * the new record in its place.  Records with their ref bit set are passed
 * over, the bit cleared, while the budget lasts.
 */
static void
evict(mcig_prefix_index_t *idx, uint32_t member, sweep_t *sw)
{
    int64_t    i;
    ring_t    *r;
    uint64_t  *rec, *e, *ref;

    r = ring_of(idx, member);
    rec = records_of(idx, member);

    for ( ;; ) {
        if (sw->moved >= idx->entries && !sw->remarked) {
            remark(idx, member, sw);
        }

        i = find(idx, rec[r->hand]);

        if (i < 0) {
            return;                 /* cannot happen: check() says so */
        }

        e = slot_at(idx, (uint64_t) i);
        ref = e + 1 + idx->words;

        if (sw->budget && bit_get(ref, member)) {
            bit_clear(ref, member);
            sw->budget--;
            advance(idx, r, sw);
            continue;
        }

        bit_clear(e + 1, member);
        bit_clear(ref, member);

        if (set_empty(e + 1, idx->words)) {
            erase(idx, (uint64_t) i);
        }

        return;
    }
}


void
mcig_prefix_credit(mcig_prefix_index_t *idx, uint32_t member,
    const uint64_t *hashes, uint32_t n)
{
    int64_t    i;
    uint32_t   k, pos, nfresh, fresh[FRESH];
    uint64_t   key, *e, *rec;
    ring_t    *r;
    sweep_t    sw;

    if (member >= idx->members) {
        return;
    }

    r = ring_of(idx, member);
    rec = records_of(idx, member);
    nfresh = 0;

    sw.budget = CLEARS + n;
    sw.moved = 0;
    sw.remarked = 0;
    sw.done = hashes;

    for (k = 0; k < n; k++) {
        key = KEY(hashes[k]);
        i = find(idx, key);

        if (i >= 0) {
            e = slot_at(idx, (uint64_t) i);

            if (bit_get(e + 1, member)) {
                bit_set(e + 1 + idx->words, member);
                continue;
            }
        }

        if (r->count == idx->entries) {
            sw.ndone = k;
            evict(idx, member, &sw);
            pos = r->hand;
            advance(idx, r, &sw);

            /* the eviction may have shifted the slot of key */
            i = find(idx, key);

        } else {
            pos = r->count++;
        }

        if (i < 0) {
            i = (int64_t) insert(idx, key);
        }

        e = slot_at(idx, (uint64_t) i);
        bit_set(e + 1, member);
        rec[pos] = key;

        /*
         * While this credit lasts its new records have their ref bit set,
         * so that its later blocks do not evict its earlier ones; they lose
         * it at the end, as blocks sent once should.
         */
        if (nfresh < FRESH) {
            bit_set(e + 1 + idx->words, member);
            fresh[nfresh++] = pos;
        }
    }

    for (k = 0; k < nfresh; k++) {
        i = find(idx, rec[fresh[k]]);

        if (i >= 0) {
            bit_clear(slot_at(idx, (uint64_t) i) + 1 + idx->words, member);
        }
    }
}


void
mcig_prefix_forget(mcig_prefix_index_t *idx, uint32_t member)
{
    int64_t    i;
    uint32_t   k;
    ring_t    *r;
    uint64_t  *rec, *e;

    if (member >= idx->members) {
        return;
    }

    r = ring_of(idx, member);
    rec = records_of(idx, member);

    for (k = 0; k < r->count; k++) {
        i = find(idx, rec[k]);

        if (i < 0) {
            continue;
        }

        e = slot_at(idx, (uint64_t) i);
        bit_clear(e + 1, member);
        bit_clear(e + 1 + idx->words, member);

        if (set_empty(e + 1, idx->words)) {
            erase(idx, (uint64_t) i);
        }
    }

    r->count = 0;
    r->hand = 0;
}


int
mcig_prefix_index_check(const mcig_prefix_index_t *idx)
{
    int64_t    f;
    uint32_t   m, k, w;
    uint64_t   i, used, mask, *e, *held, *ref;
    uint64_t   holdings[MCIG_PREFIX_MEMBERS_MAX];
    ring_t    *r;

    if (idx->magic != INDEX_MAGIC || idx->members == 0
        || idx->members > MCIG_PREFIX_MEMBERS_MAX
        || idx->words != (idx->members + 63) / 64
        || idx->used >= idx->slots)
    {
        return -1;
    }

    mask = (idx->members % 64) ? (1ULL << (idx->members % 64)) - 1 : ~0ULL;
    memset(holdings, 0, sizeof(holdings));
    used = 0;

    for (i = 0; i < idx->slots; i++) {
        e = slot_at(idx, i);
        held = e + 1;
        ref = e + 1 + idx->words;

        if (e[0] == 0) {
            continue;
        }

        used++;

        /* reachable from its home: the probe chain is unbroken */
        if (find(idx, e[0]) != (int64_t) i) {
            return -1;
        }

        if (set_empty(held, idx->words) || (held[idx->words - 1] & ~mask)) {
            return -1;
        }

        for (w = 0; w < idx->words; w++) {
            if (ref[w] & ~held[w]) {
                return -1;
            }
        }

        for (m = 0; m < idx->members; m++) {
            holdings[m] += (uint64_t) bit_get(held, m);
        }
    }

    if (used != idx->used) {
        return -1;
    }

    for (m = 0; m < idx->members; m++) {
        r = ring_of(idx, m);

        if (r->count > idx->entries || r->hand >= idx->entries
            || (r->count < idx->entries && r->hand != 0)
            || holdings[m] != r->count)
        {
            return -1;
        }

        /* with as many holdings as records, records are distinct too */
        for (k = 0; k < r->count; k++) {
            f = find(idx, records_of(idx, m)[k]);

            if (f < 0 || !bit_get(slot_at(idx, (uint64_t) f) + 1, m)) {
                return -1;
            }
        }
    }

    return 0;
}
