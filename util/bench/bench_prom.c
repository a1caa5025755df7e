/*
 * Throughput of the Prometheus parser on a vLLM V1 /metrics page, on one
 * core.
 *
 *   bench_prom [seconds]
 *
 * The page is what a vLLM V1 server with two data-parallel engines serves,
 * about 30 KB: mostly histogram buckets, _created lines and comments that
 * the vLLM preset skips.  It is fed in 4 KB chunks, as libcurl delivers
 * it, and the results are checked after every parse.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcig_prom.h"


#define LABELS  "engine=\"%d\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\""


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static char *
family(char *s, const char *name, const char *type, const char *help)
{
    return s + sprintf(s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                       type);
}


static char *
histogram(char *s, const char *name, const char *help, const char *buckets)
{
    int          e, k;
    char         le[32];
    const char  *b;

    s = family(s, name, "histogram", help);

    for (e = 0; e < 2; e++) {
        for (b = buckets, k = 0; sscanf(b, "%31[^,]", le) == 1; k++) {
            s += sprintf(s, "%s_bucket{engine=\"%d\",le=\"%s\",model_name="
                         "\"meta-llama/Llama-3.1-8B-Instruct\"} %d.0\n",
                         name, e, le, k * 7 + e);
            b += strlen(le) + (b[strlen(le)] == ',');
        }

        s += sprintf(s, "%s_bucket{engine=\"%d\",le=\"+Inf\",model_name="
                     "\"meta-llama/Llama-3.1-8B-Instruct\"} %d.0\n",
                     name, e, k * 7 + e);
        s += sprintf(s, "%s_count{" LABELS "} %d.0\n", name, e, k * 7 + e);
        s += sprintf(s, "%s_sum{" LABELS "} 1234.5678\n", name, e);
        s += sprintf(s, "%s_created{" LABELS "} 1.7382173358407154e+09\n",
                     name, e);
    }

    return s;
}


static char *
counter(char *s, const char *name, const char *help)
{
    int  e;

    s = family(s, name, "counter", help);

    for (e = 0; e < 2; e++) {
        s += sprintf(s, "%s_total{" LABELS "} %d.0\n", name, e, 1000 + e);
        s += sprintf(s, "%s_created{" LABELS "} 1.7382173358407154e+09\n",
                     name, e);
    }

    return s;
}


static char *
gauge(char *s, const char *name, const char *help, double v0, double v1)
{
    s = family(s, name, "gauge", help);
    s += sprintf(s, "%s{" LABELS "} %.17g\n", name, 0, v0);
    s += sprintf(s, "%s{" LABELS "} %.17g\n", name, 1, v1);

    return s;
}


static size_t
make_page(char *page)
{
    static const char  *counters[] = {
        "vllm:num_preemptions", "vllm:prompt_tokens",
        "vllm:generation_tokens", "vllm:prefix_cache_queries"
    };
    static const char  *histograms[][2] = {
        { "vllm:time_to_first_token_seconds",
          "0.001,0.005,0.01,0.02,0.04,0.06,0.08,0.1,0.25,0.5,0.75,1.0,2.5,"
          "5.0,7.5,10.0,20.0,40.0,80.0,160.0,640.0,2560.0" },
        { "vllm:e2e_request_latency_seconds",
          "0.3,0.5,0.8,1.0,1.5,2.0,2.5,5.0,10.0,15.0,20.0,30.0,40.0,50.0,"
          "60.0,120.0,240.0,480.0,960.0,1920.0,7680.0" },
        { "vllm:request_prompt_tokens",
          "1.0,2.0,5.0,10.0,20.0,50.0,100.0,200.0,500.0,1000.0,2000.0,"
          "5000.0,10000.0,20000.0,50000.0,100000.0" },
        { "vllm:inter_token_latency_seconds",
          "0.01,0.025,0.05,0.075,0.1,0.15,0.2,0.3,0.4,0.5,0.75,1.0,2.5,5.0,"
          "7.5,10.0,20.0,40.0,80.0" },
        { "vllm:request_queue_time_seconds",
          "0.3,0.5,0.8,1.0,1.5,2.0,2.5,5.0,10.0,15.0,20.0,30.0,40.0,50.0,"
          "60.0,120.0,240.0,480.0,960.0,1920.0,7680.0" }
    };
    char                *s;
    size_t               i;

    s = gauge(page, "vllm:num_requests_running",
              "Number of requests in model execution batches.", 5, 6);
    s = gauge(s, "vllm:num_requests_waiting",
              "Number of requests waiting to be processed.", 3, 4);
    s = gauge(s, "vllm:kv_cache_usage_perc",
              "KV-cache usage. 1 means 100 percent usage.", 0.25, 0.75);
    s = family(s, "vllm:lora_requests_info", "gauge",
               "Running stats on lora requests.");
    s += sprintf(s, "vllm:lora_requests_info{max_lora=\"4\",running_lora_"
                 "adapters=\"sql-lora, chat lora\",waiting_lora_adapters="
                 "\"tldr\"} 1.7382173358407154e+09\n");
    s += sprintf(s, "vllm:lora_requests_info{max_lora=\"4\",running_lora_"
                 "adapters=\"sql-lora\",waiting_lora_adapters=\"\"} "
                 "1.7382173350000000e+09\n");
    s = family(s, "vllm:cache_config_info", "gauge",
               "Information of the LLMEngine CacheConfig");
    s += sprintf(s, "vllm:cache_config_info{block_size=\"16\",cache_dtype="
                 "\"auto\",enable_prefix_caching=\"True\","
                 "gpu_memory_utilization=\"0.9\",num_cpu_blocks=\"9362\","
                 "num_gpu_blocks=\"81767\",sliding_window=\"None\"} 1.0\n");

    for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        s = counter(s, counters[i], "A counter of the engine.");
    }

    for (i = 0; i < sizeof(histograms) / sizeof(histograms[0]); i++) {
        s = histogram(s, histograms[i][0], "A histogram of requests.",
                      histograms[i][1]);
    }

    return (size_t) (s - page);
}


static int
check(const mcig_prom_t *p)
{
    double  waiting, running, kv;

    return mcig_prom_role_value(p, MCIG_PROM_ROLE_WAITING, &waiting)
               == MCIG_PROM_PRESENT
           && mcig_prom_role_value(p, MCIG_PROM_ROLE_RUNNING, &running)
               == MCIG_PROM_PRESENT
           && mcig_prom_role_value(p, MCIG_PROM_ROLE_KV_USAGE, &kv)
               == MCIG_PROM_PRESENT
           && waiting == 7 && running == 11 && kv == 0.5
           && p->malformed == 0 && p->lora.max_lora == 4
           && mcig_prom_lora_state(&p->lora, "chat lora", 9)
               == MCIG_PROM_LORA_RUNNING
           && p->cache.block_size == 16 && p->cache.num_gpu_blocks == 81767;
}


int
main(int argc, char **argv)
{
    char             *page;
    size_t            len;
    double            secs, t0, t1;
    unsigned long     parses;
    mcig_prom_t      *p;
    mcig_prom_set_t  *set;

    secs = (argc > 1) ? atof(argv[1]) : 2.0;

    page = malloc(64 * 1024);
    len = make_page(page);

    set = malloc(sizeof(*set));
    mcig_prom_set_init(set, 0);
    mcig_prom_set_preset(set, mcig_prom_preset(MCIG_PROM_VLLM));

    p = malloc(sizeof(*p));
    parses = 0;
    t0 = now();

    do {
        mcig_prom_init(p, set, 1024 * 1024);

        for (size_t off = 0; off < len; off += 4096) {
            mcig_prom_feed(p, (const uint8_t *) page + off,
                           (len - off < 4096) ? len - off : 4096);
        }

        if (mcig_prom_finish(p) != MCIG_PROM_OK || !check(p)) {
            fprintf(stderr, "bench_prom: wrong results\n");
            return 1;
        }

        parses++;
        t1 = now();
    } while (t1 - t0 < secs);

    printf("page_bytes=%zu parses=%lu seconds=%.3f MB_per_s=%.0f "
           "us_per_page=%.2f\n", len, parses, t1 - t0,
           (double) len * parses / (t1 - t0) / 1e6,
           (t1 - t0) / parses * 1e6);

    free(p);
    free(set);
    free(page);
    return 0;
}
