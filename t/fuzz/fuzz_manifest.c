/*
 * Copyright (C) ngx_mcig_module authors
 *
 * libFuzzer target of the manifest loader (mcig_manifest).
 *
 * Input: YAML.  A first line "#! name name ..." (a YAML comment) lists
 * pools registered as upstreams with mcig_pool before loading.  The input
 * is loaded as one file, or, when it holds a line "#--split", as two files
 * cut there, then resolved; the model is walked whole and checked against
 * the rules of mcig_manifest.h: counts of diagnostics, texts that start
 * with their position, settings in their ranges, members, rules and their
 * weights, the rewrite lookup and pick.
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -Ingx_mcig_module \
 *         t/fuzz/fuzz_manifest.c ngx_mcig_module/mcig_*.c -lm -lyaml
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcig_manifest.h"


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "fuzz_manifest: %s:%d: check failed: %s\n",     \
                    __FILE__, __LINE__, #cond);                             \
            abort();                                                        \
        }                                                                   \
    } while (0)


#define SPLIT  "\n#--split\n"


static void
check_src(const mcig_manifest_src_t *src)
{
    CHECK(src->field != NULL);
    (void) strlen(src->field);

    if (src->file != NULL) {
        (void) strlen(src->file);
        CHECK(src->line > 0 || src->column == 0);
    }
}


static void
check_int(const mcig_manifest_int_t *v, int64_t min, int64_t max)
{
    if (!v->set) {
        return;
    }

    CHECK(v->value >= min && v->value <= max);
    CHECK(v->src.file != NULL && v->src.line > 0);
    check_src(&v->src);
}


static void
check_str(const mcig_manifest_str_t *v)
{
    if (!v->set) {
        CHECK(v->value == NULL);
        return;
    }

    CHECK(v->value != NULL);
    (void) strlen(v->value);
    check_src(&v->src);
}


static void
check_diags(const mcig_manifest_t *m)
{
    size_t                       i, n, len;
    char                         pos[64];
    const mcig_manifest_diag_t  *d;

    n = mcig_manifest_ndiags(m);

    CHECK(n <= MCIG_MANIFEST_DIAGS_MAX);
    CHECK(n + mcig_manifest_ndropped(m)
          == mcig_manifest_nerrors(m) + mcig_manifest_nwarnings(m));
    CHECK(mcig_manifest_diag(m, n) == NULL);

    for (i = 0; i < n; i++) {
        d = mcig_manifest_diag(m, i);
        CHECK(d != NULL);
        CHECK(d->severity == MCIG_MANIFEST_SEV_ERROR
              || d->severity == MCIG_MANIFEST_SEV_WARNING);
        CHECK(d->message != NULL && d->text != NULL);
        check_src(&d->src);

        /* "file:line:column: message", or "file: message" */
        len = strlen(d->text);
        CHECK(len >= strlen(d->message));

        if (d->src.file != NULL && d->src.line) {
            snprintf(pos, sizeof(pos), ":%u:%u: ", d->src.line,
                     d->src.column);
            CHECK(strncmp(d->text, d->src.file, strlen(d->src.file)) == 0);
            CHECK(strstr(d->text, pos) != NULL);
        }

        if (len < 1500) {
            CHECK(strcmp(d->text + len - strlen(d->message), d->message)
                  == 0);
        }
    }
}


static void
check_pool(const mcig_manifest_t *m, const mcig_manifest_pool_t *p)
{
    uint32_t                      i, j;
    uint64_t                      total;
    const char                   *pick;
    const mcig_manifest_rule_t   *r, *found;
    const mcig_manifest_member_t *mb;

    CHECK(p->name != NULL);
    CHECK(mcig_manifest_pool_find(m, p->name, strlen(p->name)) == p);
    CHECK(p->manifest || p->registered || p->imported);
    CHECK(p->default_selector == !p->manifest);
    CHECK(p->ntarget_ports <= MCIG_MANIFEST_TARGET_PORTS_MAX);

    for (i = 0; i < p->ntarget_ports; i++) {
        check_int(&p->target_ports[i], 1, 65535);

        for (j = 0; j < i; j++) {
            CHECK(p->target_ports[i].value != p->target_ports[j].value);
        }
    }

    for (i = 0; i < p->nlabels; i++) {
        (void) strlen(p->labels[i].key);
        (void) strlen(p->labels[i].value);
    }

    check_str(&p->picker);
    check_int(&p->picker_port, 1, 65535);
    check_str(&p->picker_failure_mode);

    check_int(&p->balancing_mode, 1, 2);
    check_int(&p->max_utilization, 0, 100);
    check_int(&p->dry_run, 0, 1);
    check_int(&p->max_in_flight, 1, 1000000);
    check_int(&p->timeout_sec, 1, 3600);
    check_int(&p->traffic_duration, 1, 2);
    check_str(&p->custom_metric);

    if (p->health_check) {
        check_src(&p->health_check_src);
    }

    check_str(&p->health_path);
    check_int(&p->health_port, 1, 65535);
    check_int(&p->health_interval_sec, 1, 300);
    check_int(&p->health_timeout_sec, 1, 300);
    check_int(&p->healthy_threshold, 1, 10);
    check_int(&p->unhealthy_threshold, 1, 10);

    check_int(&p->metrics_port, 1, 65535);
    check_str(&p->metrics_path);
    check_str(&p->kv_metric);

    for (i = 0; i < p->nexports; i++) {
        (void) strlen(p->exports[i].name);
        (void) strlen(p->exports[i].metric);
        check_src(&p->exports[i].src);
    }

    for (i = 0; i < p->nmembers; i++) {
        mb = &p->members[i];
        CHECK(mb->port >= 1 && mb->port <= 65535);
        CHECK(strstr(mb->text, mb->address) != NULL);
        CHECK(mb->region == NULL || mb->zone != NULL);
        CHECK(mb->ready == 0 || mb->ready == 1);
        (void) strlen(mb->slice);
        check_src(&mb->src);

        if (mb->region != NULL) {
            CHECK(strncmp(mb->zone, mb->region, strlen(mb->region)) == 0);
        }
    }

    for (i = 0; i < p->nobjectives; i++) {
        (void) strlen(p->objectives[i].name);
        check_int(&p->objectives[i].priority, -1000000, 1000000);
    }

    for (i = 0; i < p->nrules; i++) {
        r = &p->rules[i];
        CHECK(r->ntargets >= 1);
        (void) strlen(r->rewrite);

        total = 0;

        for (j = 0; j < r->ntargets; j++) {
            CHECK(r->targets[j].weight >= 1
                  && r->targets[j].weight <= 1000000);
            CHECK(strlen(r->targets[j].model) <= MCIG_MANIFEST_MODEL_MAX);
            total += r->targets[j].weight;
        }

        CHECK(total == r->total_weight);

        pick = mcig_manifest_rewrite_pick(r, total * 7 + 3);
        CHECK(pick != NULL);

        /* a model of this rule finds this rule or an earlier one */
        for (j = 0; j < r->nmodels; j++) {
            found = mcig_manifest_rewrite_rule(p, r->models[j],
                                               strlen(r->models[j]));
            CHECK(found != NULL && found <= r);
            CHECK(found->nmodels > 0);
        }

        if (r->nmodels == 0) {
            found = mcig_manifest_rewrite_rule(p, "", 0);
            CHECK(found != NULL && found <= r && found->nmodels == 0);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                          rc;
    char                        *text, *line, *name, *end, *cut;
    size_t                       i;
    mcig_manifest_t             *m;
    const mcig_manifest_route_t *r;

    /* NUL-terminated, for the pool names and the split */
    text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    m = mcig_manifest_create();
    CHECK(m != NULL);

    if (size > 2 && text[0] == '#' && text[1] == '!') {
        end = memchr(text, '\n', size);
        line = text + 2;

        for ( /* void */ ; line < (end ? end : text + size); line++) {
            if (*line == ' ') {
                continue;
            }

            name = line;

            while (line < (end ? end : text + size) && *line != ' ') {
                line++;
            }

            mcig_manifest_add_known_pool(m, name, line - name);
        }
    }

    cut = strstr(text, SPLIT);

    if (cut != NULL && (size_t) (cut - text) < size) {
        rc = mcig_manifest_load_buffer(m, "a.yaml", text, cut - text + 1);
        rc |= mcig_manifest_load_buffer(m, "b.yaml", cut + 1,
                                        size - (cut + 1 - text));

    } else {
        rc = mcig_manifest_load_buffer(m, "a.yaml", text, size);
    }

    CHECK(rc == MCIG_MANIFEST_OK || rc == MCIG_MANIFEST_ERROR);
    CHECK((rc == MCIG_MANIFEST_OK) == (mcig_manifest_nerrors(m) == 0));

    rc = mcig_manifest_resolve(m);
    CHECK(rc == mcig_manifest_resolve(m));

    /* only errors of the resolve make it fail */
    if (rc == MCIG_MANIFEST_ERROR) {
        CHECK(mcig_manifest_nerrors(m) > 0);
    }

    check_diags(m);

    for (i = 0; i < mcig_manifest_npools(m); i++) {
        check_pool(m, mcig_manifest_pool(m, i));
    }

    CHECK(mcig_manifest_pool(m, mcig_manifest_npools(m)) == NULL);

    for (i = 0; i < mcig_manifest_nroutes(m); i++) {
        r = mcig_manifest_route(m, i);
        CHECK(r != NULL);
        CHECK(r->pool_known
              == (mcig_manifest_pool_find(m, r->pool, strlen(r->pool))
                  != NULL));
        (void) strlen(r->route);
        (void) strlen(r->path);
        (void) strlen(r->path_type);
        check_src(&r->src);
    }

    for (i = 0; i < mcig_manifest_nlisteners(m); i++) {
        CHECK(mcig_manifest_listener(m, i)->port <= 65535);
        (void) strlen(mcig_manifest_listener(m, i)->name);
    }

    mcig_manifest_destroy(m);
    free(text);

    return 0;
}
