# Active health checks (HealthCheckPolicy semantics) and passive failures:
# unhealthy members get no traffic; all unhealthy means 503.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a member failing its checks gets no traffic
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream checked {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_health_check interval=100ms timeout=100ms unhealthy=2;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://checked;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" -->';
    }
--- user_files
>>> health-127.0.0.3
ok
--- init
select(undef, undef, undef, 0.6);
--- request
GET /t
--- response_body
127.0.0.3
127.0.0.3
127.0.0.3
127.0.0.3
--- error_log eval
qr/\[warn\] .*mcig: member 127\.0\.0\.2:\d+ of pool "checked" is unhealthy: the health check of http:\/\/127\.0\.0\.2:\d+\/health answered with status 404, not 2xx; it gets no traffic until 2 checks pass/
--- no_error_log eval
qr/member 127\.0\.0\.3:\d+ of pool "checked" is unhealthy/



=== TEST 2: every member unhealthy: 503
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream all_unhealthy {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_health_check interval=100ms timeout=100ms;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://all_unhealthy;
    }
--- init
select(undef, undef, undef, 0.6);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body_like: "code":"no_member_available"



=== TEST 3: a member recovers after healthy= passed checks
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream recovers {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_health_check interval=100ms timeout=100ms healthy=3;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://recovers;
    }
--- init
select(undef, undef, undef, 0.5);
Mcig::html_file("health-127.0.0.2", "ok");
select(undef, undef, undef, 0.6);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 200
--- error_log eval
[qr/member 127\.0\.0\.2:\d+ of pool "recovers" is unhealthy/,
 qr/\[notice\] .*mcig: member 127\.0\.0\.2:\d+ of pool "recovers" is healthy again: 3 checks of http:\/\/127\.0\.0\.2:\d+\/health passed/]



=== TEST 4: failures of real traffic count (passive checks)
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream passive {
        server 127.0.0.5:1;
        mcig_pool;
        mcig_health_check interval=60s timeout=1s unhealthy=2;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://passive;
    }
--- init
Mcig::hold("/v1/models", 2, 2);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 503
--- response_body_like: "code":"no_member_available"
--- error_log eval
qr/\[warn\] .*mcig: member 127\.0\.0\.5:1 of pool "passive" is unhealthy: requests to it failed; it gets no traffic until 2 checks of http:\/\/127\.0\.0\.5:1\/health pass/



=== TEST 5: the log names the URL checked, the pool's port, not the member's
The check's port= (HealthCheckPolicy's port) overrides the member's own, so
a member whose server answers may still fail its check: the line says where.
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream other_port {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_health_check port=1 path=/healthz interval=100ms timeout=100ms;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://other_port;
    }
--- user_files
>>> health-127.0.0.2
ok
--- init
select(undef, undef, undef, 0.6);
--- request
POST /v1/completions
{"model":"m"}
--- error_code: 503
--- error_log eval
qr/\[warn\] .*mcig: member 127\.0\.0\.2:\d+ of pool "other_port" is unhealthy: the health check of http:\/\/127\.0\.0\.2:1\/healthz failed: Could(n't| not) connect[^;]*; it gets no traffic until 2 checks pass/



=== TEST 6: the check's timeout may not exceed its interval
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_health_check interval=5s timeout=10s;
    }
--- config
--- must_die
--- error_log
mcig_health_check timeout must not be longer than its interval
