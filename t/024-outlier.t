# Passive outlier detection: a member whose requests fail (5xx or no
# answer) is ejected for a growing time, never more than a bounded share
# of the pool, and visible in the status.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a member that fails fast is ejected, by default
--- http_config eval
<<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        default_type text/plain;

        location /v1/ {
            if (-f $document_root/fail-$server_addr) {
                return 500 "fail $server_addr\n";
            }

            return 200 "$server_addr\n";
        }
    }

    upstream fast_fail {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://fast_fail;
    }

    location = /t.html {
        ssi on;
        ssi_types *;
        default_type text/plain;
    }

    location = /status {
        mcig_status;
    }
--- user_files eval
">>> fail-127.0.0.3\n"
. ">>> t.html\n"
. CORE::join('', map { "<!--# include virtual=\"/v1/r$_\" wait=\"yes\" -->" }
                1 .. 40)
. "\n"
--- request eval
["GET /t.html", "GET /t.html", "GET /status"]
--- response_body_filters eval
sub {
    my ($body) = @_;

    # the status: each member's address, whether ejected, how many times
    if ($body =~ /^\{/) {
        my @m = $body =~ /"address":"127\.0\.0\.([23]):\d+".*?"ejected":(true|false),"ejected_ms":\d+,"ejections":(\d+)/g;
        return "@m\n";
    }

    my %count;
    $count{$_}++ for split /\n/, $body;
    CORE::join(" ", map { "$_=$count{$_}" } sort keys %count) . "\n";
}
--- response_body eval
["127.0.0.2=35 fail 127.0.0.3=5\n", "127.0.0.2=40\n",
 "2 false 0 3 true 1\n"]
--- no_error_log
[alert]



=== TEST 2: an ejected member comes back, and is ejected for longer if it fails again
--- http_config eval
<<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        default_type text/plain;

        location /v1/ {
            if (-f $document_root/fail-$server_addr) {
                return 500 "fail $server_addr\n";
            }

            return 200 "$server_addr\n";
        }

        # about 3 s: some 350 bytes with the header, at 100 a second
        location = /pause {
            limit_rate 100;
            limit_rate_after 0;
            return 200 ".......................................................................................................................................................................................................\n";
        }
    }

    upstream returns {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
        mcig_outlier_detection consecutive=2 ejection=1s;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://returns;
    }

    location = /pause {
        proxy_pass http://127.0.0.2:$TEST_NGINX_SERVER_PORT;
    }

    location = /t.html {
        ssi on;
        ssi_types *;
        default_type text/plain;
    }
--- user_files eval
">>> fail-127.0.0.3\n"
. ">>> t.html\n"
. CORE::join('', map { "<!--# include virtual=\"/v1/r$_\" wait=\"yes\" -->" }
                1 .. 10)
. "<!--# include virtual=\"/pause\" wait=\"yes\" -->"
. CORE::join('', map { "<!--# include virtual=\"/v1/s$_\" wait=\"yes\" -->" }
                1 .. 10)
. "\n"
--- request
GET /t.html
--- response_body_filters eval
sub {
    my %count;
    $count{$_}++ for grep { /127/ } split /\n/, $_[0];
    CORE::join(" ", map { "$_=$count{$_}" } sort keys %count) . "\n";
}
--- response_body
127.0.0.2=16 fail 127.0.0.3=4
--- error_log eval
[qr/\[warn\] .*member 127\.0\.0\.3:\d+ of pool "returns" is ejected for 1000 ms: its last 2 requests failed/,
 qr/member 127\.0\.0\.3:\d+ of pool "returns" is ejected for 2000 ms/]
--- timeout: 15



=== TEST 3: never more than the bounded share: of two failing members one is ejected
--- http_config eval
<<'_EOC_';
    server {
        listen 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        listen 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        default_type text/plain;

        location /v1/ {
            return 500 "fail $server_addr\n";
        }
    }

    upstream all_fail {
        server 127.0.0.2:$TEST_NGINX_SERVER_PORT;
        server 127.0.0.3:$TEST_NGINX_SERVER_PORT;
        mcig_pool;
    }
_EOC_
--- config
    location /v1/ {
        proxy_pass http://all_fail;
    }

    location = /t.html {
        ssi on;
        ssi_types *;
        default_type text/plain;
    }

    location = /status {
        mcig_status;
    }
--- user_files eval
">>> t.html\n"
. CORE::join('', map { "<!--# include virtual=\"/v1/r$_\" wait=\"yes\" -->" }
                1 .. 30)
. "\n"
--- request eval
["GET /t.html"]
--- response_body_filters eval
sub {
    return "ok\n" unless $_[0] =~ /^\{/;
    my @m = $_[0] =~ /"ejected":(true|false)/g;
    CORE::join(" ", sort @m) . "\n";
}
--- response_body eval
["ok\n"]
--- grep_error_log eval
qr/is ejected for/
--- grep_error_log_out
is ejected for




=== TEST 4: off, and bad parameters
--- http_config
    upstream off_pool {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_outlier_detection consecutive=0;
    }
--- config
--- must_die
--- error_log
invalid parameter "consecutive=0" of mcig_outlier_detection
