/*
 * Unit tests of the status writers: the exact JSON and Prometheus text of
 * a small snapshot (the format the nginx side wrote before the core did),
 * escapes of hostile names in both, the text read back by our Prometheus
 * parser, buffer bounds, and allocation failures of the JSON.
 */

#define _GNU_SOURCE                 /* memmem() */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#include "mcig_prom.h"
#include "mcig_status.h"


#define S(text)  { text, sizeof(text) - 1 }


static const mcig_status_region_t  regions[] = {
    { S("eu"), 11, 0 },
    { S("us"), 12, 1 }
};


static mcig_status_member_t  members_a[2];
static mcig_status_member_t  members_b[1];

static const mcig_status_objective_t  objectives[] = {
    { S("gold"), 10, 4, 0, 1, 0, 2 }
};

static const mcig_status_band_t  bands[] = {
    { 5, 2 }
};

static const uint64_t  bucket_ms[MCIG_STATUS_WAIT_BUCKETS - 1] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000
};


/* two pools: one with every option, one with none */
static void
small(mcig_status_t *st, mcig_status_pool_t *pools)
{
    mcig_status_member_t  *m;

    memset(st, 0, sizeof(mcig_status_t));
    memset(pools, 0, 2 * sizeof(mcig_status_pool_t));
    memset(members_a, 0, sizeof(members_a));
    memset(members_b, 0, sizeof(members_b));

    st->version.data = "1.22.1";
    st->version.len = 6;
    st->time_ms = 1700000000123ULL;
    st->pools = pools;
    st->npools = 2;

    m = &members_a[0];
    m->address.data = "10.0.0.1:8000";
    m->address.len = 13;
    m->cluster.data = "c1";
    m->cluster.len = 2;
    m->region = 0;
    m->in_flight = 2;
    m->capacity = 4;
    m->requests = 5000000000ULL;
    m->failures = 1;
    m->load = 300000;
    m->load_capacity = 600000;
    m->healthy = 1;
    m->health_checked = 1;
    m->health_check_age_ms = 15;
    m->scrapes = 100;
    m->scrape_errors = 2;
    m->scrape_usec = 1500;
    m->metrics_fresh = 1;
    m->kv_ppm = 250000;
    m->waiting = 3;
    m->running = 9;
    m->metrics_age_ms = 20;
    m->dispatched = 1;

    m = &members_a[1];
    m->address.data = "10.0.0.2:8000";
    m->address.len = 13;
    m->cluster.data = "c2";
    m->cluster.len = 2;
    m->region = 1;
    m->in_flight = -1;
    m->capacity = 8;
    m->scrape_errors = 5;
    m->ejected = 1;
    m->ejected_ms = 1500;
    m->ejections = 3;

    m = &members_b[0];
    m->address.data = "10.0.0.3:8000";
    m->address.len = 13;
    m->capacity = 256;
    m->healthy = 1;

    pools[0].name.data = "a";
    pools[0].name.len = 1;
    pools[0].max_in_flight = 4;
    pools[0].max_utilization = 60;
    pools[0].max_queue = 5;
    pools[0].saturated = 1;
    pools[0].no_member = 2;
    pools[0].deadline = 3;
    pools[0].responses[1] = 10;
    pools[0].responses[2] = 20;
    pools[0].responses[3] = 30;
    pools[0].responses[4] = 40;
    pools[0].responses[5] = 50;
    pools[0].decisions[1] = 7;
    pools[0].decisions[2] = 8;
    pools[0].decisions[3] = 9;
    pools[0].regions = regions;
    pools[0].nregions = 2;
    pools[0].members = members_a;
    pools[0].nmembers = 2;
    pools[0].objectives = objectives;
    pools[0].nobjectives = 1;
    pools[0].unnamed.requests = 6;
    pools[0].unnamed.shed = 1;
    pools[0].queue.enabled = 1;
    pools[0].queue.max = 1024;
    pools[0].queue.max_per_priority = 512;
    pools[0].queue.timeout_ms = 30000;
    pools[0].queue.waiting = -1;
    pools[0].queue.outcomes[MCIG_STATUS_QUEUED] = 3;
    pools[0].queue.outcomes[MCIG_STATUS_DISPATCHED] = 2;
    pools[0].queue.outcomes[MCIG_STATUS_QUEUE_FULL] = 1;
    pools[0].queue.outcomes[MCIG_STATUS_QUEUE_TIMEOUT] = 0;
    pools[0].queue.outcomes[MCIG_STATUS_ABANDONED] = 4;
    pools[0].queue.wait_ms = 1234;
    pools[0].queue.wait_buckets[0] = 1;
    pools[0].queue.wait_buckets[7] = 1;
    memcpy(pools[0].queue.bucket_ms, bucket_ms, sizeof(bucket_ms));
    pools[0].queue.bands = bands;
    pools[0].queue.nbands = 1;
    pools[0].session.enabled = 1;
    pools[0].session.header.data = "x-session-id";
    pools[0].session.header.len = 12;
    pools[0].session.kept = 7;
    pools[0].session.moved = 2;
    pools[0].custom_metrics = 1;
    pools[0].regional = 1;
    pools[0].health_checks = 1;
    pools[0].outlier_detection = 1;
    pools[0].scraping = 1;

    pools[1].name.data = "b";
    pools[1].name.len = 1;
    pools[1].max_in_flight = 256;
    pools[1].members = members_b;
    pools[1].nmembers = 1;
    memcpy(pools[1].queue.bucket_ms, bucket_ms, sizeof(bucket_ms));
}


static const char  small_json[] =
    "{\"version\":\"1.22.1\",\"time_ms\":1700000000123,\"pools\":{"
    "\"a\":{\"balancing_mode\":\"custom_metrics\",\"max_in_flight\":4,"
    "\"max_utilization\":60,\"max_queue\":5,\"dry_run\":false,"
    "\"refused\":{\"pool_saturated\":1,\"no_member_available\":2,"
    "\"deadline_exceeded\":3,\"queue_full\":1,\"queue_timeout\":0},"
    "\"queue\":{\"max\":1024,\"max_per_priority\":512,\"timeout_ms\":30000,"
    "\"sheddable\":\"shed\",\"depth\":0,"
    "\"bands\":[{\"priority\":5,\"waiting\":2}],"
    "\"queued\":3,\"dispatched\":2,\"queue_full\":1,\"queue_timeout\":0,"
    "\"abandoned\":4,\"wait_ms\":{\"count\":2,\"sum\":1234,\"buckets\":{"
    "\"5\":1,\"10\":1,\"25\":1,\"50\":1,\"100\":1,\"250\":1,\"500\":1,"
    "\"1000\":2,\"2500\":2,\"5000\":2,\"10000\":2,\"30000\":2,\"60000\":2,"
    "\"+Inf\":2}}},"
    "\"responses\":{\"1xx\":10,\"2xx\":20,\"3xx\":30,\"4xx\":40,"
    "\"5xx\":50},"
    "\"decisions\":{\"local\":7,\"spillover\":8,\"failover\":9},"
    "\"session_affinity\":{\"header\":\"x-session-id\",\"kept\":7,"
    "\"moved\":2},"
    "\"regions\":[{\"name\":\"eu\",\"local\":true,\"members\":1,"
    "\"healthy\":1,\"utilization\":0.5,\"drained\":false,\"requests\":11},"
    "{\"name\":\"us\",\"local\":false,\"members\":1,\"healthy\":0,"
    "\"utilization\":0,\"drained\":true,\"requests\":12}],"
    "\"members\":[{\"address\":\"10.0.0.1:8000\",\"region\":\"eu\","
    "\"cluster\":\"c1\",\"healthy\":true,\"in_flight\":2,\"capacity\":4,"
    "\"requests\":5000000000,\"failures\":1,\"ejected\":false,"
    "\"ejected_ms\":0,\"ejections\":0,\"health_check_age_ms\":15,"
    "\"scrapes\":100,\"scrape_errors\":2,\"scrape_duration_ms\":1.5,"
    "\"metrics\":{\"kv_cache_usage\":0.25,\"waiting\":3,\"running\":9,"
    "\"age_ms\":20,\"dispatched_since\":1}},"
    "{\"address\":\"10.0.0.2:8000\",\"region\":\"us\",\"cluster\":\"c2\","
    "\"healthy\":false,\"in_flight\":-1,\"capacity\":8,\"requests\":0,"
    "\"failures\":0,\"ejected\":true,\"ejected_ms\":1500,"
    "\"ejections\":3,\"health_check_age_ms\":null,\"scrapes\":0,"
    "\"scrape_errors\":5,\"scrape_duration_ms\":0,\"metrics\":null}],"
    "\"objectives\":[{\"name\":\"gold\",\"priority\":10,\"requests\":4,"
    "\"shed\":0,\"queued\":1,\"queue_full\":0,\"queue_timeout\":2},"
    "{\"name\":null,\"priority\":0,\"requests\":6,\"shed\":1,\"queued\":0,"
    "\"queue_full\":0,\"queue_timeout\":0}]},"
    "\"b\":{\"balancing_mode\":\"in_flight\",\"max_in_flight\":256,"
    "\"refused\":{\"pool_saturated\":0,\"no_member_available\":0,"
    "\"deadline_exceeded\":0,\"queue_full\":0,\"queue_timeout\":0},"
    "\"queue\":null,"
    "\"responses\":{\"1xx\":0,\"2xx\":0,\"3xx\":0,\"4xx\":0,\"5xx\":0},"
    "\"decisions\":{\"local\":0,\"spillover\":0,\"failover\":0},"
    "\"session_affinity\":null,"
    "\"members\":[{\"address\":\"10.0.0.3:8000\",\"healthy\":true,"
    "\"in_flight\":0,\"capacity\":256,\"requests\":0,\"failures\":0}],"
    "\"objectives\":[{\"name\":null,\"priority\":0,\"requests\":0,"
    "\"shed\":0,\"queued\":0,\"queue_full\":0,\"queue_timeout\":0}]}}}";


static const char  small_prom[] =
    "# HELP mcig_member_requests_total Requests sent to the member.\n"
    "# TYPE mcig_member_requests_total counter\n"
    "mcig_member_requests_total{pool=\"a\",member=\"10.0.0.1:8000\"}"
    " 5000000000\n"
    "mcig_member_requests_total{pool=\"a\",member=\"10.0.0.2:8000\"} 0\n"
    "mcig_member_requests_total{pool=\"b\",member=\"10.0.0.3:8000\"} 0\n"
    "# HELP mcig_member_failures_total Requests to the member that failed"
    " (error or timeout).\n"
    "# TYPE mcig_member_failures_total counter\n"
    "mcig_member_failures_total{pool=\"a\",member=\"10.0.0.1:8000\"} 1\n"
    "mcig_member_failures_total{pool=\"a\",member=\"10.0.0.2:8000\"} 0\n"
    "mcig_member_failures_total{pool=\"b\",member=\"10.0.0.3:8000\"} 0\n"
    "# HELP mcig_member_in_flight Requests in flight to the member, across"
    " all workers.\n"
    "# TYPE mcig_member_in_flight gauge\n"
    "mcig_member_in_flight{pool=\"a\",member=\"10.0.0.1:8000\"} 2\n"
    "mcig_member_in_flight{pool=\"a\",member=\"10.0.0.2:8000\"} -1\n"
    "mcig_member_in_flight{pool=\"b\",member=\"10.0.0.3:8000\"} 0\n"
    "# HELP mcig_member_healthy 1 when the member takes traffic, 0 when"
    " unhealthy.\n"
    "# TYPE mcig_member_healthy gauge\n"
    "mcig_member_healthy{pool=\"a\",member=\"10.0.0.1:8000\"} 1\n"
    "mcig_member_healthy{pool=\"a\",member=\"10.0.0.2:8000\"} 0\n"
    "mcig_member_healthy{pool=\"b\",member=\"10.0.0.3:8000\"} 1\n"
    "# HELP mcig_member_ejected 1 while outlier detection keeps the member"
    " out, else 0.\n"
    "# TYPE mcig_member_ejected gauge\n"
    "mcig_member_ejected{pool=\"a\",member=\"10.0.0.1:8000\"} 0\n"
    "mcig_member_ejected{pool=\"a\",member=\"10.0.0.2:8000\"} 1\n"
    "# HELP mcig_member_ejections_total Times outlier detection ejected the"
    " member.\n"
    "# TYPE mcig_member_ejections_total counter\n"
    "mcig_member_ejections_total{pool=\"a\",member=\"10.0.0.1:8000\"} 0\n"
    "mcig_member_ejections_total{pool=\"a\",member=\"10.0.0.2:8000\"} 3\n"
    "# HELP mcig_member_kv_cache_usage Scraped KV-cache usage (0..1), when"
    " fresh.\n"
    "# TYPE mcig_member_kv_cache_usage gauge\n"
    "mcig_member_kv_cache_usage{pool=\"a\",member=\"10.0.0.1:8000\"}"
    " 0.250000\n"
    "# HELP mcig_member_waiting_requests Scraped waiting requests, when"
    " fresh.\n"
    "# TYPE mcig_member_waiting_requests gauge\n"
    "mcig_member_waiting_requests{pool=\"a\",member=\"10.0.0.1:8000\"} 3\n"
    "# HELP mcig_member_running_requests Scraped running requests, when"
    " fresh.\n"
    "# TYPE mcig_member_running_requests gauge\n"
    "mcig_member_running_requests{pool=\"a\",member=\"10.0.0.1:8000\"} 9\n"
    "# HELP mcig_member_metrics_age_seconds Age of the member's scraped"
    " figures, when fresh.\n"
    "# TYPE mcig_member_metrics_age_seconds gauge\n"
    "mcig_member_metrics_age_seconds{pool=\"a\",member=\"10.0.0.1:8000\"}"
    " 0.020\n"
    "# HELP mcig_member_scrapes_total Good scrapes of the member's"
    " metrics.\n"
    "# TYPE mcig_member_scrapes_total counter\n"
    "mcig_member_scrapes_total{pool=\"a\",member=\"10.0.0.1:8000\"} 100\n"
    "mcig_member_scrapes_total{pool=\"a\",member=\"10.0.0.2:8000\"} 0\n"
    "# HELP mcig_member_scrape_errors_total Failed scrapes of the member's"
    " metrics.\n"
    "# TYPE mcig_member_scrape_errors_total counter\n"
    "mcig_member_scrape_errors_total{pool=\"a\",member=\"10.0.0.1:8000\"}"
    " 2\n"
    "mcig_member_scrape_errors_total{pool=\"a\",member=\"10.0.0.2:8000\"}"
    " 5\n"
    "# HELP mcig_pool_refused_total Requests the gateway refused, by"
    " reason.\n"
    "# TYPE mcig_pool_refused_total counter\n"
    "mcig_pool_refused_total{pool=\"a\",reason=\"pool_saturated\"} 1\n"
    "mcig_pool_refused_total{pool=\"a\",reason=\"no_member_available\"} 2\n"
    "mcig_pool_refused_total{pool=\"a\",reason=\"deadline_exceeded\"} 3\n"
    "mcig_pool_refused_total{pool=\"a\",reason=\"queue_full\"} 1\n"
    "mcig_pool_refused_total{pool=\"a\",reason=\"queue_timeout\"} 0\n"
    "mcig_pool_refused_total{pool=\"b\",reason=\"pool_saturated\"} 0\n"
    "mcig_pool_refused_total{pool=\"b\",reason=\"no_member_available\"} 0\n"
    "mcig_pool_refused_total{pool=\"b\",reason=\"deadline_exceeded\"} 0\n"
    "mcig_pool_refused_total{pool=\"b\",reason=\"queue_full\"} 0\n"
    "mcig_pool_refused_total{pool=\"b\",reason=\"queue_timeout\"} 0\n"
    "# HELP mcig_objective_requests_total Requests by InferenceObjective"
    " (\"\": none).\n"
    "# TYPE mcig_objective_requests_total counter\n"
    "mcig_objective_requests_total{pool=\"a\",objective=\"gold\"} 4\n"
    "mcig_objective_requests_total{pool=\"a\",objective=\"\"} 6\n"
    "mcig_objective_requests_total{pool=\"b\",objective=\"\"} 0\n"
    "# HELP mcig_objective_shed_total Sheddable requests refused, by"
    " InferenceObjective.\n"
    "# TYPE mcig_objective_shed_total counter\n"
    "mcig_objective_shed_total{pool=\"a\",objective=\"gold\"} 0\n"
    "mcig_objective_shed_total{pool=\"a\",objective=\"\"} 1\n"
    "mcig_objective_shed_total{pool=\"b\",objective=\"\"} 0\n"
    "# HELP mcig_pool_decisions_total Region decisions: local, spillover,"
    " failover.\n"
    "# TYPE mcig_pool_decisions_total counter\n"
    "mcig_pool_decisions_total{pool=\"a\",decision=\"local\"} 7\n"
    "mcig_pool_decisions_total{pool=\"a\",decision=\"spillover\"} 8\n"
    "mcig_pool_decisions_total{pool=\"a\",decision=\"failover\"} 9\n"
    "mcig_pool_decisions_total{pool=\"b\",decision=\"local\"} 0\n"
    "mcig_pool_decisions_total{pool=\"b\",decision=\"spillover\"} 0\n"
    "mcig_pool_decisions_total{pool=\"b\",decision=\"failover\"} 0\n"
    "# HELP mcig_region_requests_total Requests sent to each region of the"
    " pool.\n"
    "# TYPE mcig_region_requests_total counter\n"
    "mcig_region_requests_total{pool=\"a\",region=\"eu\"} 11\n"
    "mcig_region_requests_total{pool=\"a\",region=\"us\"} 12\n"
    "# HELP mcig_pool_responses_total Answers to the pool's requests, by"
    " status class.\n"
    "# TYPE mcig_pool_responses_total counter\n"
    "mcig_pool_responses_total{pool=\"a\",code=\"1xx\"} 10\n"
    "mcig_pool_responses_total{pool=\"a\",code=\"2xx\"} 20\n"
    "mcig_pool_responses_total{pool=\"a\",code=\"3xx\"} 30\n"
    "mcig_pool_responses_total{pool=\"a\",code=\"4xx\"} 40\n"
    "mcig_pool_responses_total{pool=\"a\",code=\"5xx\"} 50\n"
    "mcig_pool_responses_total{pool=\"b\",code=\"1xx\"} 0\n"
    "mcig_pool_responses_total{pool=\"b\",code=\"2xx\"} 0\n"
    "mcig_pool_responses_total{pool=\"b\",code=\"3xx\"} 0\n"
    "mcig_pool_responses_total{pool=\"b\",code=\"4xx\"} 0\n"
    "mcig_pool_responses_total{pool=\"b\",code=\"5xx\"} 0\n"
    "# HELP mcig_member_scrape_duration_seconds Duration of the member's"
    " last good scrape.\n"
    "# TYPE mcig_member_scrape_duration_seconds gauge\n"
    "mcig_member_scrape_duration_seconds{pool=\"a\",member=\"10.0.0.1:8000\"}"
    " 0.001500\n"
    "mcig_member_scrape_duration_seconds{pool=\"a\",member=\"10.0.0.2:8000\"}"
    " 0.000000\n"
    "# HELP mcig_pool_queue_depth Requests waiting in the pool's queue, all"
    " workers, by priority.\n"
    "# TYPE mcig_pool_queue_depth gauge\n"
    "mcig_pool_queue_depth{pool=\"a\",priority=\"10\"} 0\n"
    "mcig_pool_queue_depth{pool=\"a\",priority=\"5\"} 2\n"
    "mcig_pool_queue_depth{pool=\"a\",priority=\"0\"} 0\n"
    "# HELP mcig_pool_queue_requests_total Requests that met the pool's"
    " queue, by outcome.\n"
    "# TYPE mcig_pool_queue_requests_total counter\n"
    "mcig_pool_queue_requests_total{pool=\"a\",outcome=\"queued\"} 3\n"
    "mcig_pool_queue_requests_total{pool=\"a\",outcome=\"dispatched\"} 2\n"
    "mcig_pool_queue_requests_total{pool=\"a\",outcome=\"queue_full\"} 1\n"
    "mcig_pool_queue_requests_total{pool=\"a\",outcome=\"queue_timeout\"} 0\n"
    "mcig_pool_queue_requests_total{pool=\"a\",outcome=\"abandoned\"} 4\n"
    "# HELP mcig_pool_queue_wait_seconds Time dispatched requests waited in"
    " the pool's queue.\n"
    "# TYPE mcig_pool_queue_wait_seconds histogram\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.005\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.010\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.025\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.050\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.100\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.250\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"0.500\"} 1\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"1.000\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"2.500\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"5.000\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"10.000\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"30.000\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"60.000\"} 2\n"
    "mcig_pool_queue_wait_seconds_bucket{pool=\"a\",le=\"+Inf\"} 2\n"
    "mcig_pool_queue_wait_seconds_sum{pool=\"a\"} 1.234\n"
    "mcig_pool_queue_wait_seconds_count{pool=\"a\"} 2\n"
    "# HELP mcig_objective_queue_requests_total Requests that waited or were"
    " refused by the queue, by InferenceObjective.\n"
    "# TYPE mcig_objective_queue_requests_total counter\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"gold\","
    "outcome=\"queued\"} 1\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"gold\","
    "outcome=\"queue_full\"} 0\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"gold\","
    "outcome=\"queue_timeout\"} 2\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"\","
    "outcome=\"queued\"} 0\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"\","
    "outcome=\"queue_full\"} 0\n"
    "mcig_objective_queue_requests_total{pool=\"a\",objective=\"\","
    "outcome=\"queue_timeout\"} 0\n"
    "# HELP mcig_pool_session_affinity_total Picks of requests with a"
    " session: to its member (kept), or elsewhere as it was full (moved).\n"
    "# TYPE mcig_pool_session_affinity_total counter\n"
    "mcig_pool_session_affinity_total{pool=\"a\",outcome=\"kept\"} 7\n"
    "mcig_pool_session_affinity_total{pool=\"a\",outcome=\"moved\"} 2\n";


/* the Prometheus text, NUL-terminated here for strstr() */
static char *
prometheus(const mcig_status_t *st, size_t *len)
{
    char  *buf;

    *len = mcig_status_prometheus(st, NULL, 0);
    buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(mcig_status_prometheus(st, buf, *len), *len);
    buf[*len] = '\0';

    return buf;
}


static void
text_equal(const char *got, size_t len, const char *want)
{
    size_t  i;

    for (i = 0; i < len && want[i] && got[i] == want[i]; i++) {
        /* void */
    }

    if (i < len || want[i] != '\0') {
        fail_msg("differs at byte %zu:\n got: <%.80s>\nwant: <%.80s>", i,
                 i < len ? got + i : "", want + i);
    }
}


/*
 * Every line is a comment or a sample that mcig_prom reads, with nothing
 * left over; returns the samples.
 */
static size_t
check_lines(const char *text, size_t len)
{
    size_t            samples;
    const char       *p, *end, *lf, *name_end;
    mcig_prom_t      *prom;
    mcig_prom_set_t   set;

    prom = malloc(sizeof(mcig_prom_t));
    assert_non_null(prom);

    assert_true(len > 0 && text[len - 1] == '\n');
    samples = 0;

    for (p = text, end = text + len; p < end; p = lf + 1) {
        lf = memchr(p, '\n', (size_t) (end - p));
        assert_non_null(lf);

        if (*p == '#') {
            assert_true(strncmp(p, "# HELP mcig_", 12) == 0
                        || strncmp(p, "# TYPE mcig_", 12) == 0);
            continue;
        }

        for (name_end = p; *name_end != '{' && *name_end != ' '; name_end++) {
            /* void */
        }

        mcig_prom_set_init(&set, 0);
        assert_int_equal(mcig_prom_set_add(&set, p, (size_t) (name_end - p),
                                           MCIG_PROM_SUM, MCIG_PROM_ROLE_NONE),
                         MCIG_PROM_SPEC_OK);

        mcig_prom_init(prom, &set, 0);
        mcig_prom_feed(prom, (const uint8_t *) p, (size_t) (lf + 1 - p));
        assert_int_equal(mcig_prom_finish(prom), MCIG_PROM_OK);

        if (prom->samples != 1 || prom->malformed != 0
            || prom->result[0].series != 1)
        {
            fail_msg("not read back: <%.*s>", (int) (lf - p), p);
        }

        samples++;
    }

    free(prom);

    return samples;
}


/*
 * The series of name whose labels l1 and l2 (if not NULL) have these
 * decoded values, as mcig_prom reads the text; returns how many match.
 */
static uint32_t
series(const char *text, size_t len, const char *name, const char *l1,
    const char *v1, size_t v1_len, const char *l2, const char *v2,
    size_t v2_len, double *value)
{
    uint32_t          n;
    mcig_prom_t      *prom;
    mcig_prom_set_t   set;

    mcig_prom_set_init(&set, 0);
    assert_int_equal(mcig_prom_set_add(&set, name, strlen(name),
                                       MCIG_PROM_SUM, MCIG_PROM_ROLE_NONE),
                     MCIG_PROM_SPEC_OK);

    /* filters set by hand: their values hold any byte, NUL too */
    assert_true(v1_len <= MCIG_PROM_LVALUE_MAX);
    strcpy(set.spec[0].filter[0].name, l1);
    set.spec[0].filter[0].name_len = (uint32_t) strlen(l1);
    memcpy(set.spec[0].filter[0].value, v1, v1_len);
    set.spec[0].filter[0].value_len = (uint32_t) v1_len;
    set.spec[0].nfilters = 1;

    if (l2) {
        assert_true(v2_len <= MCIG_PROM_LVALUE_MAX);
        strcpy(set.spec[0].filter[1].name, l2);
        set.spec[0].filter[1].name_len = (uint32_t) strlen(l2);
        memcpy(set.spec[0].filter[1].value, v2, v2_len);
        set.spec[0].filter[1].value_len = (uint32_t) v2_len;
        set.spec[0].nfilters = 2;
    }

    prom = malloc(sizeof(mcig_prom_t));
    assert_non_null(prom);

    mcig_prom_init(prom, &set, 0);
    mcig_prom_feed(prom, (const uint8_t *) text, len);
    assert_int_equal(mcig_prom_finish(prom), MCIG_PROM_OK);
    assert_int_equal(prom->malformed, 0);

    n = prom->result[0].series;
    *value = prom->result[0].value;

    free(prom);

    return n;
}


static void
test_json_exact(void **state)
{
    char                *text;
    size_t               len;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    small(&st, pools);

    text = mcig_status_json(&st, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    text_equal(text, len, small_json);

    /* the length is optional */
    mcig_status_json_free(text);
    text = mcig_status_json(&st, NULL);
    assert_non_null(text);
    assert_string_equal(text, small_json);
    mcig_status_json_free(text);
}


static void
test_prometheus_exact(void **state)
{
    char                *text;
    size_t               len;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    small(&st, pools);

    text = prometheus(&st, &len);
    text_equal(text, len, small_prom);

    /* and 48 HELP and TYPE lines */
    assert_int_equal(check_lines(text, len), 92);
    free(text);
}


static void
test_no_pools(void **state)
{
    char           *text;
    size_t          len, i, lines;
    mcig_status_t   st;

    (void) state;

    memset(&st, 0, sizeof(st));

    text = mcig_status_json(&st, &len);
    assert_non_null(text);
    assert_string_equal(text, "{\"version\":\"\",\"time_ms\":0,\"pools\":{}}");
    mcig_status_json_free(text);

    /* every family's HELP and TYPE, and nothing else */
    text = prometheus(&st, &len);
    assert_int_equal(check_lines(text, len), 0);

    for (i = 0, lines = 0; i < len; i++) {
        lines += (text[i] == '\n');
    }

    assert_int_equal(lines, 48);
    free(text);
}


/*
 * The JSON escapes are cJSON's wherever cJSON wrote valid JSON: every
 * byte but NUL under 0x80 alone and in a string, and valid UTF-8.
 */
static void
test_json_escapes_as_cjson(void **state)
{
    char         s[3], *want, buf[64];
    size_t       i, n;
    cJSON       *item;
    const char  *utf8[] = { "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                            "\xef\xbf\xbd", "\xed\x9f\xbf", "\xee\x80\x80",
                            "\xf4\x8f\xbf\xbf", "a\"b\\c/d", "" };

    (void) state;

    for (i = 1; i < 0x80; i++) {
        s[0] = 'x';
        s[1] = (char) i;
        s[2] = '\0';

        item = cJSON_CreateString(s);
        want = cJSON_PrintUnformatted(item);

        n = mcig_status_json_string(buf, sizeof(buf), s, 2);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, n);

        cJSON_free(want);
        cJSON_Delete(item);
    }

    for (i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++) {
        item = cJSON_CreateString(utf8[i]);
        want = cJSON_PrintUnformatted(item);

        n = mcig_status_json_string(buf, sizeof(buf), utf8[i],
                                    strlen(utf8[i]));
        assert_int_equal(n, strlen(want));
        assert_memory_equal(buf, want, n);

        cJSON_free(want);
        cJSON_Delete(item);
    }
}


static void
test_json_escapes_hostile(void **state)
{
    char    buf[256];
    size_t  n;

    static const char  in[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk\0l";
    static const char  out[] = "\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i"
                               "\\u001fj\x7fk\\u0000l\"";

    /*
     * Invalid UTF-8 as Latin-1: a lone byte, a cut sequence, a surrogate,
     * an overlong form, past U+10FFFF, a stray continuation byte; valid
     * sequences around them are kept.
     */
    static const char  bad[] = "\xff" "\xc3\xa9" "\xc3" "z" "\xed\xa0\x80"
                               "\xc0\xaf" "\xf4\x90\x80\x80" "\x80" "\xe2\x82";
    static const char  bad_out[] = "\"\\u00ff\xc3\xa9\\u00c3z\\u00ed\\u00a0"
                                   "\\u0080\\u00c0\\u00af\\u00f4\\u0090"
                                   "\\u0080\\u0080\\u0080\\u00e2\\u0082\"";

    (void) state;

    n = mcig_status_json_string(buf, sizeof(buf), in, sizeof(in) - 1);
    assert_int_equal(n, sizeof(out) - 1);
    assert_memory_equal(buf, out, n);

    n = mcig_status_json_string(buf, sizeof(buf), bad, sizeof(bad) - 1);
    assert_int_equal(n, sizeof(bad_out) - 1);
    assert_memory_equal(buf, bad_out, n);

    /* empty, and NULL with no bytes */
    n = mcig_status_json_string(buf, sizeof(buf), NULL, 0);
    assert_int_equal(n, 2);
    assert_memory_equal(buf, "\"\"", 2);
}


static void
test_label_escapes(void **state)
{
    char    buf[256];
    size_t  n;

    /* \, " and LF escaped; CR, NUL, TAB, DEL and UTF-8 as they are */
    static const char  in[] = "a\"b\\c\nd\re\tf\0g\x7fh\xc3\xa9i";
    static const char  out[] = "a\\\"b\\\\c\\nd\re\tf\0g\x7fh\xc3\xa9i";

    /* invalid UTF-8: each byte as its Latin-1 character, in UTF-8 */
    static const char  bad[] = "\xff" "\xc3" "z" "\xed\xa0\x80" "\x80";
    static const char  bad_out[] = "\xc3\xbf" "\xc3\x83" "z"
                                   "\xc3\xad\xc2\xa0\xc2\x80" "\xc2\x80";

    (void) state;

    n = mcig_status_label_value(buf, sizeof(buf), in, sizeof(in) - 1);
    assert_int_equal(n, sizeof(out) - 1);
    assert_memory_equal(buf, out, n);

    n = mcig_status_label_value(buf, sizeof(buf), bad, sizeof(bad) - 1);
    assert_int_equal(n, sizeof(bad_out) - 1);
    assert_memory_equal(buf, bad_out, n);

    assert_int_equal(mcig_status_label_value(buf, sizeof(buf), NULL, 0), 0);
}


/* hostile names of a pool, a member, a region and an objective */
static const char  pool_name[] = "p\"o\\o\nl\r\0\xff\xc3\xa9";
static const char  pool_decoded[] = "p\"o\\o\nl\r\0\xc3\xbf\xc3\xa9";
static const char  member_name[] = "m}\",x=\"y\n# HELP";
static const char  region_name[] = "r\xed\xa0\x80\t";
static const char  region_decoded[] = "r\xc3\xad\xc2\xa0\xc2\x80\t";
static const char  objective_name[] = "\\\"\\n";
static const char  header_name[] = "x-\"s\"\n\xff";


static void
hostile(mcig_status_t *st, mcig_status_pool_t *pools)
{
    static mcig_status_region_t     region;
    static mcig_status_objective_t  obj;

    small(st, pools);

    pools[0].name.data = pool_name;
    pools[0].name.len = sizeof(pool_name) - 1;
    members_a[1].address.data = member_name;
    members_a[1].address.len = sizeof(member_name) - 1;
    members_a[1].requests = 77;
    members_a[0].region = 0;
    members_a[1].region = 0;

    region.name.data = region_name;
    region.name.len = sizeof(region_name) - 1;
    region.requests = 5;
    pools[0].regions = &region;
    pools[0].nregions = 1;

    obj.name.data = objective_name;
    obj.name.len = sizeof(objective_name) - 1;
    obj.priority = -3;
    obj.requests = 8;
    pools[0].objectives = &obj;
    pools[0].nobjectives = 1;

    pools[0].session.header.data = header_name;
    pools[0].session.header.len = sizeof(header_name) - 1;
}


static void
test_hostile_prometheus(void **state)
{
    char                *text;
    size_t               len;
    double               v;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    static const char  band[] = "\",priority=\"-3\"} 0\n";

    (void) state;

    hostile(&st, pools);
    text = prometheus(&st, &len);

    /* one region less than small() */
    assert_int_equal(check_lines(text, len), 91);

    assert_int_equal(series(text, len, "mcig_member_requests_total",
                            "pool", pool_decoded, sizeof(pool_decoded) - 1,
                            "member", member_name, sizeof(member_name) - 1,
                            &v), 1);
    assert_true(v == 77);

    assert_int_equal(series(text, len, "mcig_region_requests_total",
                            "pool", pool_decoded, sizeof(pool_decoded) - 1,
                            "region", region_decoded,
                            sizeof(region_decoded) - 1, &v), 1);
    assert_true(v == 5);

    assert_int_equal(series(text, len, "mcig_objective_requests_total",
                            "objective", objective_name,
                            sizeof(objective_name) - 1, NULL, NULL, 0, &v),
                     1);
    assert_true(v == 8);

    /* the objective's priority is a band of the depth; a NUL is in text */
    assert_non_null(memmem(text, len, band, sizeof(band) - 1));

    /* the member's name does not make a label or a line of its own */
    assert_int_equal(series(text, len, "mcig_member_requests_total",
                            "x", "y", 1, NULL, NULL, 0, &v), 0);

    free(text);
}


static void
test_hostile_json(void **state)
{
    char                *text;
    size_t               len, i;
    cJSON               *root, *pool, *item;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    hostile(&st, pools);

    text = mcig_status_json(&st, &len);
    assert_non_null(text);

    /* printable ASCII and the UTF-8 of the names: no raw control byte */
    for (i = 0; i < len; i++) {
        assert_true((unsigned char) text[i] >= 0x20);
    }

    root = cJSON_ParseWithLength(text, len);
    assert_non_null(root);

    /* cJSON's strings end at NUL: the name up to it */
    pool = cJSON_GetObjectItemCaseSensitive(root, "pools")->child;
    assert_non_null(pool);
    assert_string_equal(pool->string, "p\"o\\o\nl\r");
    assert_true(strstr(text, "\"p\\\"o\\\\o\\nl\\r\\u0000\\u00ff\xc3\xa9\":")
                != NULL);

    item = cJSON_GetArrayItem(cJSON_GetObjectItem(pool, "members"), 1);
    assert_string_equal(cJSON_GetObjectItem(item, "address")->valuestring,
                        member_name);
    assert_string_equal(cJSON_GetObjectItem(item, "region")->valuestring,
                        "r\xc3\xad\xc2\xa0\xc2\x80\t");

    item = cJSON_GetArrayItem(cJSON_GetObjectItem(pool, "objectives"), 0);
    assert_string_equal(cJSON_GetObjectItem(item, "name")->valuestring,
                        objective_name);

    item = cJSON_GetArrayItem(cJSON_GetObjectItem(pool, "regions"), 0);
    assert_int_equal(cJSON_GetObjectItem(item, "members")->valueint, 2);

    item = cJSON_GetObjectItem(pool, "session_affinity");
    assert_string_equal(cJSON_GetObjectItem(item, "header")->valuestring,
                        "x-\"s\"\n\xc3\xbf");
    assert_int_equal(cJSON_GetObjectItem(item, "kept")->valueint, 7);

    cJSON_Delete(root);
    mcig_status_json_free(text);
}


/*
 * The depth series: the priorities waiting and those of the objectives
 * and 0, each once, highest first, in whatever order the bands come.
 */
static void
test_depth_merge(void **state)
{
    char                     *text;
    size_t                    len;
    const char               *p;
    mcig_status_t             st;
    mcig_status_pool_t        pools[2];
    mcig_status_objective_t   obj[5];

    static const mcig_status_band_t  waiting[] = {
        { 0, 1 }, { 7, 2 }, { -5, 3 }
    };

    static const char  want[] =
        "mcig_pool_queue_depth{pool=\"a\",priority=\"10\"} 0\n"
        "mcig_pool_queue_depth{pool=\"a\",priority=\"7\"} 2\n"
        "mcig_pool_queue_depth{pool=\"a\",priority=\"3\"} 0\n"
        "mcig_pool_queue_depth{pool=\"a\",priority=\"0\"} 1\n"
        "mcig_pool_queue_depth{pool=\"a\",priority=\"-5\"} 3\n"
        "mcig_pool_queue_depth{pool=\"a\",priority=\"-9223372036854775808\"}"
        " 0\n"
        "# HELP";

    (void) state;

    small(&st, pools);
    memset(obj, 0, sizeof(obj));
    obj[0].priority = 10;
    obj[1].priority = 0;
    obj[2].priority = -5;
    obj[3].priority = 3;
    obj[4].priority = INT64_MIN;
    pools[0].objectives = obj;
    pools[0].nobjectives = 5;
    pools[0].queue.bands = waiting;
    pools[0].queue.nbands = 3;

    text = prometheus(&st, &len);
    p = strstr(text, "mcig_pool_queue_depth{");
    assert_non_null(p);
    assert_memory_equal(p, want, sizeof(want) - 1);
    free(text);

    /* the JSON lists the bands as they come */
    text = mcig_status_json(&st, NULL);
    assert_non_null(strstr(text, "\"bands\":[{\"priority\":0,\"waiting\":1},"
                                 "{\"priority\":7,\"waiting\":2},"
                                 "{\"priority\":-5,\"waiting\":3}]"));
    mcig_status_json_free(text);
}


/* a member whose region is out of range is in no region's figures */
static void
test_region_out_of_range(void **state)
{
    char                *text;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    small(&st, pools);
    members_a[1].region = 2;

    text = mcig_status_json(&st, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "\"address\":\"10.0.0.2:8000\","
                                 "\"region\":null,\"cluster\":\"c2\""));
    assert_non_null(strstr(text, "{\"name\":\"us\",\"local\":false,"
                                 "\"members\":0,\"healthy\":0,"));
    mcig_status_json_free(text);
}


/*
 * Every buffer size from 0 to the whole: the length is always the whole
 * one, the buffer holds a prefix, and nothing is written past it (ASan
 * watches the exact allocation, a canary the byte after).
 */
static void
test_buffer_bounds(void **state)
{
    char                *whole, *buf;
    size_t               len, size;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    hostile(&st, pools);
    whole = prometheus(&st, &len);

    for (size = 0; size <= len; size++) {
        buf = malloc(size + 1);
        assert_non_null(buf);
        buf[size] = '\x5a';

        assert_int_equal(mcig_status_prometheus(&st, buf, size), len);
        assert_memory_equal(buf, whole, size);
        assert_int_equal(buf[size], '\x5a');

        free(buf);
    }

    assert_int_equal(mcig_status_prometheus(&st, NULL, 0), len);

    /* the escapes alone */
    for (size = 0; size <= 8; size++) {
        buf = malloc(size + 1);
        assert_non_null(buf);
        buf[size] = '\x5a';

        assert_int_equal(mcig_status_json_string(buf, size, "\x01\xff", 2),
                         14);
        assert_int_equal(buf[size], '\x5a');

        assert_int_equal(mcig_status_label_value(buf, size, "\"\xff", 2), 4);
        assert_int_equal(buf[size], '\x5a');

        free(buf);
    }

    free(whole);
}


/* cJSON's allocator, failing once a number of allocations have been made */
static long  allocations_left;

static void *
failing_malloc(size_t size)
{
    if (allocations_left-- <= 0) {
        return NULL;
    }

    return malloc(size);
}


/*
 * A failed allocation anywhere gives NULL, never a JSON with holes, and
 * leaks nothing (LeakSanitizer checks at exit).
 */
static void
test_json_allocation_failures(void **state)
{
    char                *text;
    long                 n;
    cJSON_Hooks          hooks;
    mcig_status_t        st;
    mcig_status_pool_t   pools[2];

    (void) state;

    small(&st, pools);

    hooks.malloc_fn = failing_malloc;
    hooks.free_fn = free;
    cJSON_InitHooks(&hooks);

    for (n = 0; /* void */; n++) {
        allocations_left = n;
        text = mcig_status_json(&st, NULL);

        if (text) {
            break;
        }

        assert_true(n < 100000);
    }

    cJSON_InitHooks(NULL);

    assert_true(n > 10);
    assert_string_equal(text, small_json);
    free(text);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_exact),
        cmocka_unit_test(test_prometheus_exact),
        cmocka_unit_test(test_no_pools),
        cmocka_unit_test(test_json_escapes_as_cjson),
        cmocka_unit_test(test_json_escapes_hostile),
        cmocka_unit_test(test_label_escapes),
        cmocka_unit_test(test_hostile_prometheus),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_depth_merge),
        cmocka_unit_test(test_region_out_of_range),
        cmocka_unit_test(test_buffer_bounds),
        cmocka_unit_test(test_json_allocation_failures),
    };

    return cmocka_run_group_tests_name("status writers", tests, NULL, NULL);
}
