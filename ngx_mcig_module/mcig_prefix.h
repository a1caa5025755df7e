/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Prefix-cache affinity: the prompt is cut into fixed-size blocks, each
 * block gets a chained 64-bit hash (it covers every block before it), and
 * an index remembers which pool members were sent which blocks, so that a
 * request can go where its leading blocks are likely still in the model
 * server's KV cache.  As the EPP's prefix scorer: approximate (bytes, not
 * tokens), seeded with the model name and cache_salt, partial last block
 * not hashed.
 *
 * Pure C, no nginx headers.  The index lives in memory the caller provides
 * (an nginx shared zone): it holds no pointers, only offsets and indices,
 * and the caller serialises calls (the zone's mutex).
 */

#ifndef MCIG_PREFIX_H
#define MCIG_PREFIX_H

#include <stddef.h>
#include <stdint.h>


#define MCIG_PREFIX_BLOCK_SIZE     64     /* bytes, the EPP's default */
#define MCIG_PREFIX_BLOCK_MIN      16
#define MCIG_PREFIX_BLOCK_MAX      4096
#define MCIG_PREFIX_MAX_BLOCKS     256    /* the EPP's default */
#define MCIG_PREFIX_ENTRIES        31250  /* per member, the EPP's default */
#define MCIG_PREFIX_MEMBERS_MAX    256


/* --- block hashing ---------------------------------------------------- */

/*
 * Hashes a byte stream fed in pieces.  Blocks are hashed *unseeded* as the
 * bytes arrive, each from the previous block's hash (the chain), so the
 * model name, which may come after the prompt in a JSON body, is mixed in
 * only at the end: out[i] = mix(seed, chain[i]).  The chain does not depend
 * on the seed, so two requests with the same prompt and the same model get
 * the same hashes whatever the order of their JSON keys, and two models
 * never share a block hash.
 */

typedef struct {
    uint64_t       chain;         /* hash of the blocks so far, unseeded */
    uint64_t       state[2];      /* of the block being read: two lanes */
    uint64_t       seed;          /* applied to out[] when seeded */
    uint64_t      *out;           /* max_blocks hashes, the caller's */
    uint32_t       block_size;    /* bytes, a multiple of 16 */
    uint32_t       max_blocks;
    uint32_t       nblocks;       /* complete blocks hashed */
    uint32_t       fill;          /* bytes of the current block seen */
    uint32_t       npend;         /* bytes in pend */
    uint32_t       seeded;
    uint8_t        pend[16];
} mcig_prefix_hasher_t;


/*
 * block_size is rounded down to a multiple of 16 and clamped to
 * MCIG_PREFIX_BLOCK_MIN..MCIG_PREFIX_BLOCK_MAX; out holds max_blocks
 * hashes.  max_blocks 0 hashes nothing.
 */
void mcig_prefix_hasher_init(mcig_prefix_hasher_t *h, uint32_t block_size,
    uint32_t max_blocks, uint64_t *out);

/* forgets the bytes fed (a later duplicate "prompt" replaces the first) */
void mcig_prefix_hasher_reset(mcig_prefix_hasher_t *h);

/* feeding stops once max_blocks blocks are hashed: the rest is ignored */
void mcig_prefix_hasher_feed(mcig_prefix_hasher_t *h, const uint8_t *p,
    size_t len);

static inline int
mcig_prefix_hasher_full(const mcig_prefix_hasher_t *h)
{
    return h->nblocks >= h->max_blocks;
}

/*
 * Mixes the seed into out[0..nblocks).  May be called again with another
 * seed (a model rewritten after the scan): the previous seed is taken out.
 * Returns the number of blocks.
 */
uint32_t mcig_prefix_hasher_seed(mcig_prefix_hasher_t *h, uint64_t seed);

/*
 * The seed of a model and of its cache_salt: salt is the value of
 * mcig_prefix_salt_*() over the raw bytes of the JSON string, 0 without.
 */
uint64_t mcig_prefix_seed(const uint8_t *model, size_t len, uint64_t salt);

#define MCIG_PREFIX_SALT_INIT  0xcbf29ce484222325ULL    /* FNV-1a */

static inline uint64_t
mcig_prefix_salt_feed(uint64_t salt, const uint8_t *p, size_t len)
{
    while (len--) {
        salt = (salt ^ *p++) * 0x100000001b3ULL;
    }

    return salt;
}

/* a general 64-bit hash of a byte string */
uint64_t mcig_hash64(const void *p, size_t len, uint64_t seed);


/* --- index ------------------------------------------------------------- */

typedef struct mcig_prefix_index_s  mcig_prefix_index_t;


/*
 * Bytes an index needs for members (1..MCIG_PREFIX_MEMBERS_MAX) holding at
 * most entries block hashes each, or 0 if out of bounds.  About
 * entries * members * 40 bytes for up to 64 members.
 */
size_t mcig_prefix_index_size(uint32_t members, uint32_t entries);

/* mem: size bytes, 8-byte aligned; returns mem as an index, or NULL */
mcig_prefix_index_t *mcig_prefix_index_init(void *mem, size_t size,
    uint32_t members, uint32_t entries);

uint32_t mcig_prefix_index_members(const mcig_prefix_index_t *idx);
uint32_t mcig_prefix_index_entries(const mcig_prefix_index_t *idx);

/* block hashes the member holds */
uint32_t mcig_prefix_held(const mcig_prefix_index_t *idx, uint32_t member);

/* leading blocks of hashes[0..n) the member holds */
uint32_t mcig_prefix_match(const mcig_prefix_index_t *idx,
    const uint64_t *hashes, uint32_t n, uint32_t member);

/*
 * counts[m] = leading blocks member m holds, for every member, in one
 * lookup per block; returns the largest count.
 */
uint32_t mcig_prefix_match_all(const mcig_prefix_index_t *idx,
    const uint64_t *hashes, uint32_t n, uint32_t *counts);

/* the member was sent these blocks: they are its most recent */
void mcig_prefix_credit(mcig_prefix_index_t *idx, uint32_t member,
    const uint64_t *hashes, uint32_t n);

/* the member holds nothing any more (removed, or its server restarted) */
void mcig_prefix_forget(mcig_prefix_index_t *idx, uint32_t member);

/* checks the index's invariants (tests, fuzzing): 0 if sound */
int mcig_prefix_index_check(const mcig_prefix_index_t *idx);


#endif /* MCIG_PREFIX_H */
