/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Session affinity by rendezvous (highest random weight) hashing: a
 * session goes to the member with the highest weight(session, member)
 * among those offered.  A weight depends on the session's value and the
 * member's key alone, so every worker, every reload and every gateway
 * replica ranks the members of a session alike, with nothing to share or
 * store; when a member leaves, only its sessions move (each to its second
 * choice), and a member that joins takes about 1 / (n + 1) of them.  The
 * member's key is the hash of its address, not its place in the pool, so
 * that adding a server does not reshuffle the others' sessions.
 *
 * Pure C, no nginx headers, no allocation: the caller walks its members
 * and offers the candidates one by one, as for mcig_pick:
 *
 *     per member, at configuration time:
 *         key = mcig_session_hash(address, len);
 *     per request:
 *         mcig_session_start(&s, mcig_session_hash(value, len));
 *         mcig_session_offer(&s, i, key[i], full[i]);  ... each candidate
 *         i = mcig_session_pick(&s);    -1: take the normal pick
 */

#ifndef MCIG_SESSION_H
#define MCIG_SESSION_H

#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint64_t    session;          /* mcig_session_hash() of the value */
    uint64_t    best_weight;
    int         best;             /* the session's member, -1 if none */
    int         best_full;        /* it has no room for another request */
} mcig_session_t;


/* the hash of a session's value, or of a member's address (its key) */
uint64_t mcig_session_hash(const void *data, size_t len);

/* the member's rank for the session: higher goes first */
uint64_t mcig_session_weight(uint64_t session, uint64_t key);

void mcig_session_start(mcig_session_t *s, uint64_t session);

/*
 * A candidate: index is the caller's, key its mcig_session_hash(); full
 * when it cannot take another request now.  Equal weights (two members
 * of one address) keep the first offered.
 */
void mcig_session_offer(mcig_session_t *s, int index, uint64_t key,
    int full);

/*
 * The session's member if it has room, else -1: none was offered, or it
 * is full and the request takes the normal pick (the load guard: affinity
 * never sends a request to a full member).
 */
int mcig_session_pick(const mcig_session_t *s);


#endif /* MCIG_SESSION_H */
