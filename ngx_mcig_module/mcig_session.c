/*
 * Copyright (C) ngx_mcig_module authors
 *
 * The hashes are mcig_prefix's: a weight is the member's key hashed with
 * the session's hash as the seed, which mixes both through a full 64x64
 * multiply and murmur3's finaliser.  The key is hashed as 8 little-endian
 * bytes, so that gateways of either byte order rank members alike.
 */

#include "mcig_prefix.h"
#include "mcig_session.h"


/* tells session hashes from other uses of mcig_hash64() */
#define SESSION_SEED  0x73657373696f6e00ULL     /* "session" */


uint64_t
mcig_session_hash(const void *data, size_t len)
{
    return mcig_hash64(data, len, SESSION_SEED);
}


uint64_t
mcig_session_weight(uint64_t session, uint64_t key)
{
    int      i;
    uint8_t  bytes[8];

    for (i = 0; i < 8; i++) {
        bytes[i] = (uint8_t) (key >> (8 * i));
    }

    return mcig_hash64(bytes, sizeof(bytes), session);
}


void
mcig_session_start(mcig_session_t *s, uint64_t session)
{
    s->session = session;
    s->best_weight = 0;
    s->best = -1;
    s->best_full = 0;
}


void
mcig_session_offer(mcig_session_t *s, int index, uint64_t key, int full)
{
    uint64_t  weight;

    weight = mcig_session_weight(s->session, key);

    if (s->best < 0 || weight > s->best_weight) {
        s->best = index;
        s->best_weight = weight;
        s->best_full = full ? 1 : 0;
    }
}


int
mcig_session_pick(const mcig_session_t *s)
{
    return s->best_full ? -1 : s->best;
}
