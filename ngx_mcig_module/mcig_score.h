/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Endpoint scoring inside a pool, as the EPP's scheduler (v1.2+) does it:
 * each scorer gives a candidate a value in 0..1, the weighted sum is its
 * score, the highest score wins and ties are broken at random, or by the
 * caller.  Values are kept in parts per million, so that equal inputs give
 * exactly equal scores and ties are seen as ties.
 *
 *   kv-cache   1 - KV-cache usage
 *   queue      (maxQ - q) / (maxQ - minQ) over the candidates, 1 if all
 *              are equal
 *   prefix     leading blocks the candidate holds / blocks of the request
 *   lora       adapter running there 1, free adapter slot 0.8, adapter
 *              waiting there 0.6, else 0
 *   in-flight  1 - in_flight / capacity, at least 0
 *
 * A candidate whose metrics are stale has its kv-cache and queue values
 * taken from its in-flight count instead (the in-flight scorer's value):
 * it is not compared on figures nobody knows.
 *
 * Load guard: when some candidates are full (saturated, by the caller's
 * rule) and others are not, only the others are scored, so affinity never
 * piles requests onto a member that has no room while another has some.
 *
 * Pure C, no nginx headers, no allocation: the caller fills an array of
 * candidates (on its stack) and gets an index back.
 */

#ifndef MCIG_SCORE_H
#define MCIG_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "mcig_pick.h"


#define MCIG_SCORE_ONE         1000000      /* a scorer's 1.0 */
#define MCIG_SCORE_WEIGHT_MAX  1000000


typedef struct {
    uint32_t    kv;
    uint32_t    queue;
    uint32_t    prefix;
    uint32_t    lora;
    uint32_t    in_flight;
} mcig_score_weights_t;

/* the EPP's default profile: queue 2, kv-cache 2, prefix 3 */
#define MCIG_SCORE_WEIGHTS_DEFAULT  { 2, 2, 3, 0, 0 }


typedef enum {
    MCIG_LORA_NONE = 0,           /* cannot load the adapter now: 0 */
    MCIG_LORA_WAITING,            /* adapter waiting to load there: 0.6 */
    MCIG_LORA_SLOT_FREE,          /* room for one more adapter: 0.8 */
    MCIG_LORA_RUNNING             /* adapter loaded and running: 1.0 */
} mcig_lora_e;


typedef struct {
    uint32_t    kv_ppm;           /* KV-cache usage (fresh metrics) */
    uint32_t    waiting;          /* requests queued (fresh metrics) */
    uint32_t    in_flight;        /* this gateway's requests there */
    uint32_t    capacity;         /* in-flight capacity; 0 is taken as 1 */
    uint32_t    prefix_blocks;    /* leading blocks of the request held */
    uint8_t     fresh;            /* kv_ppm and waiting are known */
    uint8_t     full;             /* saturated: no room for another */
    uint8_t     lora;             /* mcig_lora_e */
} mcig_score_cand_t;


typedef struct {
    int         best;             /* index of the pick, -1 if n is 0 */
    uint32_t    ties;             /* candidates with the best score */
    uint32_t    scored;           /* candidates taking part */
    uint32_t    all_full;         /* every candidate was full */
    uint64_t    score;            /* of the pick: weights x ppm */
} mcig_score_result_t;


/* each scorer's value, 0..MCIG_SCORE_ONE */
uint32_t mcig_score_kv(uint32_t kv_ppm);
uint32_t mcig_score_queue(uint32_t waiting, uint32_t min, uint32_t max);
uint32_t mcig_score_prefix(uint32_t matched, uint32_t total);
uint32_t mcig_score_lora(mcig_lora_e state);
uint32_t mcig_score_in_flight(uint32_t in_flight, uint32_t capacity);

/*
 * The LoRA state of an endpoint for the requested adapter, in the EPP's
 * order: running wins, then a free slot (running + waiting adapters below
 * max_lora), then waiting.
 */
mcig_lora_e mcig_lora_state(int running_there, int waiting_there,
    uint32_t running, uint32_t waiting, uint32_t max_lora);

/*
 * The adapters of a vllm:lora_requests_info list ("a,b, c": names between
 * commas, blanks around them dropped) as mcig_lora_hash() values, at most
 * max of them; returns how many were written.
 */
uint32_t mcig_lora_list_hashes(const char *list, size_t len, uint64_t *out,
    uint32_t max);

/* the hash of an adapter (model) name, as the lists keep them */
uint64_t mcig_lora_hash(const void *name, size_t len);

/* whether hash is among list[0..n) */
int mcig_lora_listed(const uint64_t *list, uint32_t n, uint64_t hash);

/*
 * Scores c[0..n) for a request of total_blocks prefix blocks and returns
 * the index picked (also in res when not NULL), -1 if n is 0.  Weights
 * above MCIG_SCORE_WEIGHT_MAX count as that.  Ties are broken with rng;
 * with tied (room for n), the candidates with the best score are listed
 * there instead, res->ties of them, for the caller to break the tie (rng
 * may then be NULL).
 */
int mcig_score_pick(const mcig_score_weights_t *w,
    const mcig_score_cand_t *c, size_t n, uint32_t total_blocks,
    mcig_rng_t *rng, int *tied, mcig_score_result_t *res);


#endif /* MCIG_SCORE_H */
