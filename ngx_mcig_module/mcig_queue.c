/*
 * Copyright (C) ngx_mcig_module authors
 *
 * Each band is a ring of its tenants' leaders: pop takes the first leader,
 * and the tenant's next entry, now its leader, goes to the end of the ring,
 * so tenants take one turn each (round robin with a quantum of one
 * request).  A tenant seen for the first time joins at the end too.  A
 * leader removed for another reason (disconnect, expiry) hands its place
 * in the ring to its successor: the tenant keeps its turn.
 */

#include <string.h>

#include "mcig_queue.h"


#define entry_of(l, field)                                                  \
    ((mcig_queue_entry_t *) ((char *) (l)                                   \
                             - offsetof(mcig_queue_entry_t, field)))


static inline void
link_init(mcig_queue_link_t *l)
{
    l->prev = l;
    l->next = l;
}


static inline int
link_empty(const mcig_queue_link_t *head)
{
    return head->next == head;
}


/* x goes before head: at the end of head's list */
static inline void
link_insert_tail(mcig_queue_link_t *head, mcig_queue_link_t *x)
{
    x->prev = head->prev;
    x->next = head;
    head->prev->next = x;
    head->prev = x;
}


static inline void
link_insert_after(mcig_queue_link_t *at, mcig_queue_link_t *x)
{
    x->prev = at;
    x->next = at->next;
    at->next->prev = x;
    at->next = x;
}


static inline void
link_remove(mcig_queue_link_t *x)
{
    x->prev->next = x->next;
    x->next->prev = x->prev;
    link_init(x);
}


/* y takes x's place */
static inline void
link_replace(mcig_queue_link_t *x, mcig_queue_link_t *y)
{
    y->prev = x->prev;
    y->next = x->next;
    y->prev->next = y;
    y->next->prev = y;
    link_init(x);
}


static uint32_t
bucket_of(uint64_t tenant, uint32_t band)
{
    uint64_t  h;

    h = (tenant ^ ((uint64_t) (band + 1) * 0x9e3779b97f4a7c15ULL))
        * 0xff51afd7ed558ccdULL;

    return (uint32_t) ((h >> 32) % MCIG_QUEUE_BUCKETS);
}


void
mcig_queue_init(mcig_queue_t *q, uint32_t max_depth, uint32_t max_band_depth)
{
    memset(q, 0, sizeof(mcig_queue_t));
    q->max_depth = max_depth;
    q->max_band_depth = max_band_depth;
    link_init(&q->age);
}


/* FNV-1a: fairness ids are short */
uint64_t
mcig_queue_tenant(const void *id, size_t len)
{
    uint64_t        h = 0xcbf29ce484222325ULL;
    const uint8_t  *p = id;

    while (len--) {
        h = (h ^ *p++) * 0x100000001b3ULL;
    }

    return h;
}


static int
band_find(const mcig_queue_t *q, int32_t priority)
{
    uint32_t  k;

    for (k = 0; k < q->nbands; k++) {
        if (q->band[q->order[k]].priority == priority) {
            return q->order[k];
        }
    }

    return -1;
}


static int
band_open(mcig_queue_t *q, int32_t priority)
{
    uint32_t  k, slot;

    if (q->nbands == MCIG_QUEUE_BANDS_MAX) {
        return -1;
    }

    /* bands in use are the nbands of order[]; a slot out of it is free */
    for (slot = 0; q->band[slot].depth != 0; slot++) {
        /* void */
    }

    q->band[slot].priority = priority;
    link_init(&q->band[slot].ring);

    for (k = q->nbands; k > 0 && q->band[q->order[k - 1]].priority < priority;
         k--)
    {
        q->order[k] = q->order[k - 1];
    }

    q->order[k] = (uint8_t) slot;
    q->nbands++;

    return (int) slot;
}


static void
band_close(mcig_queue_t *q, uint32_t slot)
{
    uint32_t  k;

    for (k = 0; q->order[k] != slot; k++) {
        /* void */
    }

    memmove(&q->order[k], &q->order[k + 1], q->nbands - k - 1);
    q->nbands--;
}


static mcig_queue_entry_t *
leader_find(const mcig_queue_t *q, uint32_t band, uint64_t tenant)
{
    mcig_queue_entry_t  *e;

    for (e = q->bucket[bucket_of(tenant, band)]; e; e = e->hnext) {
        if (e->band == band && e->tenant == tenant) {
            return e;
        }
    }

    return NULL;
}


mcig_queue_rc_e
mcig_queue_push(mcig_queue_t *q, mcig_queue_entry_t *e, int32_t priority,
    uint64_t tenant, uint64_t now_ms, uint64_t ttl_ms)
{
    int                  slot;
    mcig_queue_link_t   *at;
    mcig_queue_band_t   *b;
    mcig_queue_entry_t  *leader, **head;

    if (q->max_depth && q->depth >= q->max_depth) {
        return MCIG_QUEUE_FULL;
    }

    slot = band_find(q, priority);

    if (slot >= 0) {
        if (q->max_band_depth && q->band[slot].depth >= q->max_band_depth) {
            return MCIG_QUEUE_BAND_FULL;
        }

    } else {
        slot = band_open(q, priority);

        if (slot < 0) {
            return MCIG_QUEUE_NO_BAND;
        }
    }

    b = &q->band[slot];

    e->tenant = tenant;
    e->priority = priority;
    e->band = (uint16_t) slot;
    e->deadline = (ttl_ms > UINT64_MAX - now_ms) ? UINT64_MAX
                                                 : now_ms + ttl_ms;
    e->queued = 1;

    leader = leader_find(q, (uint32_t) slot, tenant);

    if (leader) {
        e->leader = 0;
        e->hnext = NULL;
        e->hprev = NULL;
        link_init(&e->ring);
        link_insert_tail(&leader->flow, &e->flow);

    } else {
        e->leader = 1;
        link_init(&e->flow);
        link_insert_tail(&b->ring, &e->ring);

        head = &q->bucket[bucket_of(tenant, (uint32_t) slot)];
        e->hnext = *head;
        e->hprev = head;

        if (*head) {
            (*head)->hprev = &e->hnext;
        }

        *head = e;
    }

    /* deadline order: with one TTL for all, the new entry goes last */
    for (at = q->age.prev;
         at != &q->age && entry_of(at, age)->deadline > e->deadline;
         at = at->prev)
    {
        /* void */
    }

    link_insert_after(at, &e->age);

    b->depth++;
    q->depth++;

    return MCIG_QUEUE_OK;
}


static void
take(mcig_queue_t *q, mcig_queue_entry_t *e, int rotate)
{
    mcig_queue_band_t   *b;
    mcig_queue_entry_t  *n;

    b = &q->band[e->band];

    if (!e->leader) {
        link_remove(&e->flow);

    } else if (!link_empty(&e->flow)) {
        /* the tenant's next entry leads it now */
        n = entry_of(e->flow.next, flow);
        link_remove(&e->flow);
        n->leader = 1;

        if (rotate) {
            link_remove(&e->ring);
            link_insert_tail(&b->ring, &n->ring);

        } else {
            link_replace(&e->ring, &n->ring);
        }

        n->hnext = e->hnext;
        n->hprev = e->hprev;
        *n->hprev = n;

        if (n->hnext) {
            n->hnext->hprev = &n->hnext;
        }

    } else {
        link_remove(&e->ring);
        *e->hprev = e->hnext;

        if (e->hnext) {
            e->hnext->hprev = e->hprev;
        }
    }

    link_remove(&e->age);
    e->hnext = NULL;
    e->hprev = NULL;
    e->leader = 0;
    e->queued = 0;

    q->depth--;

    if (--b->depth == 0) {
        band_close(q, e->band);
    }
}


mcig_queue_entry_t *
mcig_queue_peek(const mcig_queue_t *q)
{
    if (q->nbands == 0) {
        return NULL;
    }

    return entry_of(q->band[q->order[0]].ring.next, ring);
}


mcig_queue_entry_t *
mcig_queue_pop(mcig_queue_t *q)
{
    mcig_queue_entry_t  *e;

    e = mcig_queue_peek(q);

    if (e) {
        take(q, e, 1);
    }

    return e;
}


void
mcig_queue_remove(mcig_queue_t *q, mcig_queue_entry_t *e)
{
    if (e->queued) {
        take(q, e, 0);
    }
}


mcig_queue_entry_t *
mcig_queue_expire(mcig_queue_t *q, uint64_t now_ms)
{
    mcig_queue_entry_t  *e;

    if (link_empty(&q->age)) {
        return NULL;
    }

    e = entry_of(q->age.next, age);

    if (e->deadline > now_ms) {
        return NULL;
    }

    take(q, e, 0);

    return e;
}


uint64_t
mcig_queue_next_deadline(const mcig_queue_t *q)
{
    if (link_empty(&q->age)) {
        return UINT64_MAX;
    }

    return entry_of(q->age.next, age)->deadline;
}


uint32_t
mcig_queue_band_depth(const mcig_queue_t *q, int32_t priority)
{
    int  slot = band_find(q, priority);

    return (slot < 0) ? 0 : q->band[slot].depth;
}


void
mcig_queue_counts_init(mcig_queue_counts_t *c)
{
    memset(c, 0, sizeof(mcig_queue_counts_t));
}


int
mcig_queue_counts_add(mcig_queue_counts_t *c, int32_t priority,
    int32_t delta)
{
    uint32_t  i, free_slot;

    free_slot = MCIG_QUEUE_BANDS_MAX;

    for (i = 0; i < c->nbands; i++) {
        if (c->band[i].priority == priority) {
            break;
        }

        if (c->band[i].waiting == 0 && free_slot == MCIG_QUEUE_BANDS_MAX) {
            free_slot = i;
        }
    }

    if (i == c->nbands) {
        if (delta <= 0) {
            return 0;               /* nothing counted: nothing to take */
        }

        if (free_slot < MCIG_QUEUE_BANDS_MAX) {
            i = free_slot;

        } else if (c->nbands < MCIG_QUEUE_BANDS_MAX) {
            i = c->nbands++;

        } else {
            return -1;
        }

        c->band[i].priority = priority;
        c->band[i].waiting = 0;
    }

    if (delta >= 0) {
        c->band[i].waiting += (uint32_t) delta;

    } else if ((uint64_t) -(int64_t) delta >= c->band[i].waiting) {
        c->band[i].waiting = 0;     /* never below zero */

    } else {
        c->band[i].waiting -= (uint32_t) -(int64_t) delta;
    }

    return 0;
}


int
mcig_queue_higher_waiting(const mcig_queue_counts_t *c, int32_t priority)
{
    uint32_t  i;

    for (i = 0; i < c->nbands && i < MCIG_QUEUE_BANDS_MAX; i++) {
        if (c->band[i].priority > priority && c->band[i].waiting) {
            return 1;
        }
    }

    return 0;
}
