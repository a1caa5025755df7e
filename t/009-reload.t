# "nginx -s reload" keeps the members' shared state when the pool is
# unchanged: requests still in flight in the old workers stay counted.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: in-flight counts survive a reload
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream kept_over_reload {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://kept_over_reload;
    }
--- init
Mcig::hold("/v1/slow", 1, 6);
Mcig::reload();
--- request
POST /v1/completions
{"model":"m"}
--- more_headers
x-gateway-inference-objective: batch
--- error_code: 429
--- response_body_like: "code":"pool_saturated"
--- error_log
reconfiguring
--- timeout: 10



=== TEST 2: a member added on reload; the others keep their state
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream grows {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_max_in_flight 1;
        mcig_objective batch priority=-1;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://grows;
    }

    location = /s {
        mcig_status;
    }
--- init
Mcig::hold("/v1/slow", 1, 6);
Mcig::edit_conf(sub { s{(server 127\.0\.0\.2:\d+;)}{$1 server 127.0.0.3:$Test::Nginx::Util::ServerPort;} });
Mcig::reload();
--- pipelined_requests eval
["POST /v1/completions\n{\"model\":\"m\"}", "GET /s"]
--- more_headers eval
["x-gateway-inference-objective: batch", ""]
--- response_body_like eval
["^127\\.0\\.0\\.3\$",
 qr/"members":\[\{"address":"127\.0\.0\.2:\d+","healthy":true,"in_flight":1,"capacity":1,"requests":1,.*\{"address":"127\.0\.0\.3:\d+","healthy":true,"in_flight":0,"capacity":1,"requests":1,/]
--- timeout: 10



=== TEST 3: members removed by reloads are collected, the zone does not fill
--- http_config eval
$Mcig::members . <<'_EOC_';
    mcig_zone churn 32k;

    upstream churning {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.1.1:1 down;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://churning;
    }

    location = /s {
        mcig_status;
    }
--- init
# every reload replaces the down member by a new address, as pods come
# and go; 45 stale members would not fit in 32k
for my $i (2 .. 46) {
    Mcig::edit_conf(sub { s{server 127\.0\.1\.\d+:1 down;}{server 127.0.1.$i:1 down;} });
    kill 'HUP', Mcig::master_pid();
    select(undef, undef, undef, 0.3);
}
select(undef, undef, undef, 1.5);
--- request
GET /s
--- response_body_like: "address":"127\.0\.1\.46:1"
--- error_log
freed the state of
--- no_error_log
is too small
--- timeout: 30
