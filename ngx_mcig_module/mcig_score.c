/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Two passes over the candidates: the first finds whether any has room and
 * the queue range among those taking part, the second scores them and keeps
 * the best, choosing among equals by reservoir sampling.
 */

#include "mcig_prefix.h"
#include "mcig_score.h"


#define ONE  MCIG_SCORE_ONE


uint32_t
mcig_score_kv(uint32_t kv_ppm)
{
    return (kv_ppm >= ONE) ? 0 : ONE - kv_ppm;
}


uint32_t
mcig_score_queue(uint32_t waiting, uint32_t min, uint32_t max)
{
    if (max <= min) {
        return ONE;
    }

    if (waiting <= min) {
        return ONE;
    }

    if (waiting >= max) {
        return 0;
    }

    return (uint32_t) ((uint64_t) (max - waiting) * ONE / (max - min));
}


uint32_t
mcig_score_prefix(uint32_t matched, uint32_t total)
{
    if (total == 0) {
        return 0;
    }

    if (matched >= total) {
        return ONE;
    }

    return (uint32_t) ((uint64_t) matched * ONE / total);
}


uint32_t
mcig_score_lora(mcig_lora_e state)
{
    switch (state) {
    case MCIG_LORA_RUNNING:
        return ONE;
    case MCIG_LORA_SLOT_FREE:
        return ONE / 10 * 8;
    case MCIG_LORA_WAITING:
        return ONE / 10 * 6;
    default:
        return 0;
    }
}


/*
 * Relative to the member's own capacity rather than normalised over the
 * candidates: a difference of one request between two idle members does
 * not outweigh a whole prefix match, and weights keep their meaning.
 */
uint32_t
mcig_score_in_flight(uint32_t in_flight, uint32_t capacity)
{
    if (capacity == 0) {
        capacity = 1;
    }

    if (in_flight >= capacity) {
        return 0;
    }

    return (uint32_t) ((uint64_t) (capacity - in_flight) * ONE / capacity);
}


mcig_lora_e
mcig_lora_state(int running_there, int waiting_there, uint32_t running,
    uint32_t waiting, uint32_t max_lora)
{
    if (running_there) {
        return MCIG_LORA_RUNNING;
    }

    if ((uint64_t) running + waiting < max_lora) {
        return MCIG_LORA_SLOT_FREE;
    }

    return waiting_there ? MCIG_LORA_WAITING : MCIG_LORA_NONE;
}


static uint64_t
weight(uint32_t w)
{
    return (w > MCIG_SCORE_WEIGHT_MAX) ? MCIG_SCORE_WEIGHT_MAX : w;
}


int
mcig_score_pick(const mcig_score_weights_t *w, const mcig_score_cand_t *c,
    size_t n, uint32_t total_blocks, mcig_rng_t *rng, int *tied,
    mcig_score_result_t *res)
{
    int                  best;
    size_t               i;
    uint32_t             qmin, qmax, ties, scored, room, fb, fq;
    uint64_t             score, best_score, wkv, wq, wp, wl, wf;
    mcig_score_result_t  dummy;

    if (res == NULL) {
        res = &dummy;
    }

    wkv = weight(w->kv);
    wq = weight(w->queue);
    wp = weight(w->prefix);
    wl = weight(w->lora);
    wf = weight(w->in_flight);

    room = 0;

    for (i = 0; i < n; i++) {
        room += !c[i].full;
    }

    /* the queue range of the fresh candidates taking part */
    qmin = UINT32_MAX;
    qmax = 0;

    for (i = 0; i < n; i++) {
        if ((room && c[i].full) || !c[i].fresh) {
            continue;
        }

        if (c[i].waiting < qmin) {
            qmin = c[i].waiting;
        }

        if (c[i].waiting > qmax) {
            qmax = c[i].waiting;
        }
    }

    best = -1;
    best_score = 0;
    ties = 0;
    scored = 0;

    for (i = 0; i < n; i++) {
        if (room && c[i].full) {
            continue;
        }

        scored++;

        fb = mcig_score_in_flight(c[i].in_flight, c[i].capacity);

        if (c[i].fresh) {
            score = wkv * mcig_score_kv(c[i].kv_ppm);
            fq = mcig_score_queue(c[i].waiting, qmin, qmax);

        } else {
            score = wkv * fb;
            fq = fb;
        }

        score += wq * fq
                 + wp * mcig_score_prefix(c[i].prefix_blocks, total_blocks)
                 + wl * mcig_score_lora((mcig_lora_e) c[i].lora)
                 + wf * fb;

        if (best < 0 || score > best_score) {
            best = (int) i;
            best_score = score;
            ties = 1;

            if (tied) {
                tied[0] = (int) i;
            }

            continue;
        }

        if (score == best_score) {
            ties++;

            if (tied) {
                tied[ties - 1] = (int) i;
                continue;
            }

            /* reservoir sampling: each of k tied candidates wins with 1/k */
            if (mcig_rng_next(rng) % ties == 0) {
                best = (int) i;
            }
        }
    }

    res->best = best;
    res->ties = ties;
    res->scored = scored;
    res->all_full = (n > 0 && room == 0);
    res->score = best_score;

    return best;
}


uint64_t
mcig_lora_hash(const void *name, size_t len)
{
    /* never 0, so that a zeroed list holds nothing */
    return mcig_hash64(name, len, 0x6c6f7261ULL) | 1;
}


uint32_t
mcig_lora_list_hashes(const char *list, size_t len, uint64_t *out,
    uint32_t max)
{
    uint32_t     n;
    const char  *p, *end, *name, *last;

    n = 0;
    p = list;
    end = list + len;

    while (p < end && n < max) {
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }

        name = p;

        while (p < end && *p != ',') {
            p++;
        }

        last = p;

        while (last > name && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (last > name) {
            out[n++] = mcig_lora_hash(name, (size_t) (last - name));
        }

        p++;                            /* the comma */
    }

    return n;
}


int
mcig_lora_listed(const uint64_t *list, uint32_t n, uint64_t hash)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (list[i] == hash) {
            return 1;
        }
    }

    return 0;
}
