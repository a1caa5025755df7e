# Configuration errors are caught by "nginx -t" with a clear message.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use Mcig;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: backup servers are refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        server 127.0.0.3:8000 backup;
        mcig_pool;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*mcig_pool does not support "backup" servers, in upstream "llama"/



=== TEST 2: backup servers after mcig_pool are refused by nginx itself
--- http_config
    upstream llama {
        mcig_pool;
        server 127.0.0.2:8000;
        server 127.0.0.3:8000 backup;
    }
--- config
--- must_die
--- error_log
balancing method does not support parameter "backup"



=== TEST 3: keepalive must follow mcig_pool
--- skip_nginx: 4: >= 1.29.7: keepalive wraps every upstream's balancer by itself, in any order
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        keepalive 8;
        mcig_pool;
    }
--- config
--- must_die
--- error_log
"mcig_pool" must come before "keepalive" and replaces other load balancing methods



=== TEST 4: mcig directives without mcig_pool
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_max_in_flight 10;
    }
--- config
--- must_die
--- error_log
mcig directives in upstream "llama"



=== TEST 5: max in flight must be at least 1
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_max_in_flight 0;
    }
--- config
--- must_die
--- error_log
invalid mcig_max_in_flight "0": a number from 1 to 1000000 is expected



=== TEST 6: a priority must be an integer
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_objective food-review priority=high;
    }
--- config
--- must_die
--- error_log
invalid priority "priority=high"



=== TEST 7: objective names are unique in a pool
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        mcig_objective food-review priority=1;
        mcig_objective food-review priority=2;
    }
--- config
--- must_die
--- error_log
duplicate objective "food-review"



=== TEST 8: a zone too small for the pool's members
--- http_config
    mcig_zone tiny 32k;

    upstream llama {
        server 127.0.0.2:8000;
        server 127.0.0.3:8000;
        server 127.0.0.4:8000;
        server 127.0.0.5:8000;
        server 127.0.0.6:8000;
        server 127.0.0.7:8000;
        server 127.0.0.8:8000;
        server 127.0.0.9:8000;
        server 127.0.0.10:8000;
        server 127.0.0.11:8000;
        server 127.0.0.12:8000;
        server 127.0.0.13:8000;
        server 127.0.0.14:8000;
        server 127.0.0.15:8000;
        server 127.0.0.16:8000;
        server 127.0.0.17:8000;
        server 127.0.0.18:8000;
        server 127.0.0.19:8000;
        server 127.0.0.20:8000;
        server 127.0.0.21:8000;
        server 127.0.0.22:8000;
        server 127.0.0.23:8000;
        server 127.0.0.24:8000;
        server 127.0.0.25:8000;
        server 127.0.0.26:8000;
        server 127.0.0.27:8000;
        server 127.0.0.28:8000;
        server 127.0.0.29:8000;
        server 127.0.0.30:8000;
        server 127.0.0.31:8000;
        server 127.0.0.32:8000;
        server 127.0.0.33:8000;
        server 127.0.0.34:8000;
        server 127.0.0.35:8000;
        server 127.0.0.36:8000;
        server 127.0.0.37:8000;
        server 127.0.0.38:8000;
        server 127.0.0.39:8000;
        server 127.0.0.40:8000;
        server 127.0.0.41:8000;
        server 127.0.0.42:8000;
        server 127.0.0.43:8000;
        server 127.0.0.44:8000;
        server 127.0.0.45:8000;
        server 127.0.0.46:8000;
        server 127.0.0.47:8000;
        server 127.0.0.48:8000;
        server 127.0.0.49:8000;
        server 127.0.0.50:8000;
        server 127.0.0.51:8000;
        server 127.0.0.52:8000;
        server 127.0.0.53:8000;
        server 127.0.0.54:8000;
        server 127.0.0.55:8000;
        server 127.0.0.56:8000;
        server 127.0.0.57:8000;
        server 127.0.0.58:8000;
        server 127.0.0.59:8000;
        server 127.0.0.60:8000;
        server 127.0.0.61:8000;
        server 127.0.0.62:8000;
        server 127.0.0.63:8000;
        server 127.0.0.64:8000;
        server 127.0.0.65:8000;
        server 127.0.0.66:8000;
        server 127.0.0.67:8000;
        server 127.0.0.68:8000;
        server 127.0.0.69:8000;
        server 127.0.0.70:8000;
        server 127.0.0.71:8000;
        server 127.0.0.72:8000;
        server 127.0.0.73:8000;
        server 127.0.0.74:8000;
        server 127.0.0.75:8000;
        server 127.0.0.76:8000;
        server 127.0.0.77:8000;
        server 127.0.0.78:8000;
        server 127.0.0.79:8000;
        server 127.0.0.80:8000;
        mcig_pool;
    }
--- config
--- must_die
--- error_log
mcig_zone "tiny" is too small for the members of pool "llama"; increase its size



=== TEST 9: least_conn before mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        least_conn;
        mcig_pool;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log
"mcig_pool" must come before "keepalive" and replaces other load balancing methods



=== TEST 10: least_conn after mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        least_conn;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a load balancing method \(least_conn, hash, ip_hash, random\) after "mcig_pool" in upstream "llama" in \S+:\d+ replaces the pool: remove it/



=== TEST 11: hash before mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        hash $remote_addr;
        mcig_pool;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log
"mcig_pool" must come before "keepalive" and replaces other load balancing methods



=== TEST 12: hash after mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        hash $remote_addr;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a load balancing method \(least_conn, hash, ip_hash, random\) after "mcig_pool" in upstream "llama" in \S+:\d+ replaces the pool: remove it/



=== TEST 13: ip_hash before mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        ip_hash;
        mcig_pool;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log
"mcig_pool" must come before "keepalive" and replaces other load balancing methods



=== TEST 14: ip_hash after mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        ip_hash;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a load balancing method \(least_conn, hash, ip_hash, random\) after "mcig_pool" in upstream "llama" in \S+:\d+ replaces the pool: remove it/



=== TEST 15: random before mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        random;
        mcig_pool;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log
"mcig_pool" must come before "keepalive" and replaces other load balancing methods



=== TEST 16: random after mcig_pool is refused
--- http_config
    upstream llama {
        server 127.0.0.2:8000;
        mcig_pool;
        random;
    }
--- config
    location = /s { mcig_status; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a load balancing method \(least_conn, hash, ip_hash, random\) after "mcig_pool" in upstream "llama" in \S+:\d+ replaces the pool: remove it/
