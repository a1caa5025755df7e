# CUSTOM_METRICS balancing: the members' /metrics pages are scraped by one
# worker, and traffic follows their KV-cache usage; stale or missing
# metrics fall back to in-flight counts.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: traffic goes to the member with the lower KV-cache usage
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream follows_kv {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=50ms;
        mcig_balancing_mode custom_metrics max_utilization=60;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://follows_kv;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" -->';
    }
--- user_files
>>> metrics-127.0.0.2.prom
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.9
vllm:num_requests_running{engine="0",model_name="m"} 9.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.1
vllm:num_requests_running{engine="0",model_name="m"} 1.0
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
--- init
select(undef, undef, undef, 0.5);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
127.0.0.3
127.0.0.3
--- error_log
mcig: this worker scrapes the members' metrics



=== TEST 2: older vLLM (gpu_cache_usage_perc) and data-parallel engines
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream older_vllm {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics engine=vllm;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://older_vllm;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" -->';
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:gpu_cache_usage_perc{engine="0"} 0.2
vllm:gpu_cache_usage_perc{engine="1"} 0.8
vllm:num_requests_running{engine="0"} 2
vllm:num_requests_running{engine="1"} 8
>>> metrics-127.0.0.3.prom
vllm:gpu_cache_usage_perc{engine="0"} 0.4
vllm:gpu_cache_usage_perc{engine="1"} 0.4
vllm:num_requests_running{engine="0"} 20
vllm:num_requests_running{engine="1"} 20
--- init
select(undef, undef, undef, 0.5);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3



=== TEST 3: a saturated pool by the metrics sheds sheddable requests
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream full_by_metrics {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_queue off;
        mcig_metrics;
        mcig_balancing_mode custom_metrics max_utilization=60;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://full_by_metrics;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.7
vllm:num_requests_running 7
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.2
vllm:num_requests_running 20
vllm:num_requests_waiting 12
--- init
select(undef, undef, undef, 0.5);
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["x-gateway-inference-objective: batch", ""]
--- error_code eval
[429, 200]



=== TEST 3b: max_queue sets how long a queue makes a member full
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream queue_limit {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode custom_metrics max_utilization=60 max_queue=20;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://queue_limit;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.2
vllm:num_requests_running 20
vllm:num_requests_waiting 12
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 200



=== TEST 4: dry run scrapes, but balances on in-flight counts
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream dry_run {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT weight=2;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode custom_metrics dry_run;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://dry_run;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" -->';
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.9
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.1
--- init
select(undef, undef, undef, 0.3);
Mcig::hold("/v1/slow", 2, 4);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2



=== TEST 5: members without metrics fall back to in-flight counts
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream no_metrics {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics port=1;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://no_metrics;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" -->';
    }
--- init
select(undef, undef, undef, 0.3);
Mcig::hold("/v1/slow", 1, 4);
--- request
GET /t
--- response_body_like: ^(127\.0\.0\.[23])\n(\1\n){2}$
--- error_log eval
qr/\[warn\] .*mcig: scraping the metrics of member 127\.0\.0\.2:\d+ of pool "no_metrics" from http:\/\/127\.0\.0\.2:1\/metrics(\?\.\.\.)? failed: Could(n't| not) connect/



=== TEST 5b: figures that stop being refreshed go stale: while another member's are fresh, the member is picked last
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream goes_stale {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=50ms stale=300ms;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config eval
"location /v1/ { proxy_pass http://goes_stale; }\n" . <<'_EOC_';
    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" -->';
    }
_EOC_
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.7
vllm:num_requests_running 100
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.05
vllm:num_requests_running 100
--- init
# .3 looks emptier while fresh; once its page is gone its last figure
# goes stale, and with .2's fresh it counts as twice its target (its
# in-flight count, none, would make it look empty)
select(undef, undef, undef, 0.4);
Mcig::html_file("metrics-127.0.0.3.prom", undef);
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2



=== TEST 6: garbage, errors and out-of-range values are not used
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream bad_pages {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://bad_pages;
    }
--- user_files
>>> metrics-127.0.0.2.prom
<html><body>\x00\xff not metrics</body></html>
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 7.5
--- init
select(undef, undef, undef, 0.5);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
[qr/scraping the metrics of member 127\.0\.0\.2:\d+ of pool "bad_pages" from http:\/\/127\.0\.0\.2:\d+\/metrics\S* failed: the page has no valid KV-cache usage/,
 qr/scraping the metrics of member 127\.0\.0\.3:\d+ of pool "bad_pages" from http:\/\/127\.0\.0\.3:\d+\/metrics\S* failed: the page has no valid KV-cache usage/]



=== TEST 7: custom_metrics needs mcig_metrics
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_balancing_mode custom_metrics;
    }
--- config
--- must_die
--- error_log
"mcig_balancing_mode custom_metrics" needs "mcig_metrics" in upstream "llama"



=== TEST 8: the two balancing modes are exclusive
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_metrics;
        mcig_balancing_mode in_flight custom_metrics;
    }
--- config
--- must_die
--- error_log
invalid parameter "custom_metrics" of mcig_balancing_mode



=== TEST 9: an unknown engine
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_metrics engine=tgi;
    }
--- config
--- must_die
--- error_log
invalid parameter "engine=tgi" of mcig_metrics



=== TEST 14: a request that ended gives its share of the cache back at once, not at the next scrape
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream ends {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=10s stale=30s;
        mcig_balancing_mode custom_metrics max_utilization=80;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://ends;
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.5
vllm:num_requests_running 1
--- init
select(undef, undef, undef, 0.5);
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}",
 "POST /v1/completions\n{\"model\":\"m\"}"]
--- more_headers eval
["", "x-gateway-inference-objective: batch"]
--- error_code eval
[200, 200]
