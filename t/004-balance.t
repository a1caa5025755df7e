# Balancing by in-flight load: the member with the lowest in-flight /
# capacity ratio gets the request.  Members are kept busy by requests held
# from other connections.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: requests avoid the member with a request in flight
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream busy_member {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://busy_member;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" --><!--# include virtual="/v1/e" wait="yes" --><!--# include virtual="/v1/f" wait="yes" -->';
    }
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
GET /t
--- response_body_like: ^(127\.0\.0\.[23])\n(\1\n){5}$



=== TEST 2: weights scale a member's capacity
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream weighted {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT weight=2;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://weighted;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" -->';
    }
--- init
Mcig::hold("/v1/slow", 2, 4);
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.2
127.0.0.2
127.0.0.2



=== TEST 3: with keepalive after mcig_pool
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream with_keepalive {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        keepalive 8;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://with_keepalive;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" -->';
    }
--- init
Mcig::hold("/v1/slow", 1, 4);
--- request
GET /t
--- response_body_like: ^(127\.0\.0\.[23])\n(\1\n){3}$
--- error_log
get keepalive peer
--- log_level: debug



=== TEST 4: an idle pool spreads sequential requests by weight, as nginx
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream weighted_idle {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT weight=3;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://weighted_idle;
    }

    location = /t.html {
        ssi on;
        ssi_types *;
        default_type text/plain;
    }
--- user_files eval
">>> t.html\n"
. CORE::join('', map { "<!--# include virtual=\"/v1/r$_\" wait=\"yes\" -->" }
                1 .. 200)
. "\n"
--- request
GET /t.html
--- response_body_filters eval
sub {
    my %count;
    $count{$_}++ for split /\n/, $_[0];
    CORE::join(" ", map { "$_=$count{$_}" } sort keys %count) . "\n";
}
--- response_body
127.0.0.2=150 127.0.0.3=50



=== TEST 5: equal members take turns in order, as with round robin
--- http_config eval
$Mcig::members . <<'_EOC_';
    upstream turns {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://turns;
    }

    location = /t {
        ssi on;
        ssi_types *;
        default_type text/plain;
        return 200 '<!--# include virtual="/v1/a" wait="yes" --><!--# include virtual="/v1/b" wait="yes" --><!--# include virtual="/v1/c" wait="yes" --><!--# include virtual="/v1/d" wait="yes" --><!--# include virtual="/v1/e" wait="yes" --><!--# include virtual="/v1/f" wait="yes" -->';
    }
--- request
GET /t
--- response_body
127.0.0.2
127.0.0.3
127.0.0.2
127.0.0.3
127.0.0.2
127.0.0.3
