# One worker scrapes at a time; when it is killed, another takes over the
# lease within one lease period and traffic keeps following the metrics.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the lease passes to another worker when the scraper is killed
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream leased {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_metrics interval=50ms stale=500ms;
        mcig_balancing_mode custom_metrics;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://leased;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" -->';
    }
--- user_files
>>> metrics-127.0.0.2.prom
vllm:kv_cache_usage_perc 0.95
vllm:num_requests_running 19
>>> metrics-127.0.0.3.prom
vllm:kv_cache_usage_perc 0.05
vllm:num_requests_running 1
--- init
select(undef, undef, undef, 0.5);
Mcig::kill_scraper();
select(undef, undef, undef, 2.0);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
--- grep_error_log eval: qr/mcig: this worker scrapes/
--- grep_error_log_out eval
# the killed worker's, then another's (a reload hands over once more)
qr/^(mcig: this worker scrapes\n){2,}$/
--- mcig_expect_alert
--- timeout: 10
