package McigMode;

# Test modes that Test::Nginx has no environment variable for; loaded into
# every test with PERL5OPT="-I util/perl -MMcigMode" by util/test.sh and
# util/compat.sh.
#
#   MCIG_WORKERS=N       N > 1: a master process and N worker processes (Test::Nginx:
#                        master off, worker_processes 1), unless the file
#                        chooses its own with master_on() and workers()
#   MCIG_BLOCK           set for each block to "<file>-t<block>" (e.g.
#                        004-balance-t2), so that the nginx it starts names
#                        its reports after it: valgrind's --log-file with
#                        %q{MCIG_BLOCK}
#   MCIG_UBSAN_OPTIONS   with MCIG_REPORT_DIR: UBSAN_OPTIONS of each block,
#                        log_path=MCIG_REPORT_DIR/<block> added.  In an
#                        ASan+UBSan binary UBSAN_OPTIONS' log_path decides
#                        where ASan and UBSan both write.
#
# Under TEST_NGINX_USE_HUP, a file that sets TEST_NGINX_REUSE_PORT is
# skipped (see below).
#
# Under TEST_NGINX_USE_VALGRIND, Test::Nginx starts nginx in the background
# and goes on after TEST_NGINX_SLEEP (15 ms), long before nginx runs under
# valgrind: each block that starts nginx first waits, in its --- init, for
# nginx's pid file (written once nginx listens), up to 30 s.
#
# The INIT block runs after the test file's "use Test::Nginx::Socket" and
# before the file's own master_on(), workers() and run_tests().

use strict;
use warnings;
use File::Basename qw(basename);

INIT {
    if (defined &Test::Nginx::Util::workers) {
        my $n = $ENV{MCIG_WORKERS};

        # Test::Nginx 0.32's HUP mode adds a server on the test port, with
        # the test server's listen options, to check the configuration's
        # version: with TEST_NGINX_REUSE_PORT nginx refuses it ("duplicate
        # listen options"), so a file that sets it cannot run under HUP
        if ($ENV{TEST_NGINX_USE_HUP} && $ENV{TEST_NGINX_REUSE_PORT}) {
            Test::More->builder->skip_all("TEST_NGINX_REUSE_PORT under "
                . "TEST_NGINX_USE_HUP: Test::Nginx repeats the test "
                . "server's listen options (duplicate listen options)");
        }

        if (defined $n && $n =~ /^[1-9][0-9]*$/ && $n > 1) {
            Test::Nginx::Util::master_on();
            Test::Nginx::Util::workers($n);
        }

        Test::Nginx::Util::add_block_preprocessor(sub {
            my $block = shift;
            my $file = basename($0, ".t");
            my $n = $block->name =~ /^TEST (\d+)/ ? $1 : "x";
            my $tag = "$file-t$n";

            $ENV{MCIG_BLOCK} = $tag;

            if ($ENV{TEST_NGINX_USE_VALGRIND} && !defined $block->must_die) {
                my $init = $block->init // "";
                $block->set_value("init", "McigMode::wait_for_nginx();\n$init");
            }

            if ($ENV{MCIG_REPORT_DIR}) {
                my $opts = $ENV{MCIG_UBSAN_OPTIONS} // "";
                $ENV{UBSAN_OPTIONS} = ($opts eq "" ? "" : "$opts:")
                                      . "log_path=$ENV{MCIG_REPORT_DIR}/$tag";
            }
        });
    }
}

sub wait_for_nginx {
    no warnings "once";
    my $pidfile = $Test::Nginx::Util::PidFile;

    for (1 .. 300) {
        return if -s $pidfile;
        select(undef, undef, undef, 0.1);
    }

    warn "McigMode: no $pidfile after 30 s\n";
}

1;
