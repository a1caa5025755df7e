# The example configuration in conf.d/ passes "nginx -t".

use strict;
use warnings;
use Test::More tests => 2;
use File::Path qw(make_path);

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

make_path('build/run');

my $out = `$nginx -t -p . -c conf.d/nginx.conf 2>&1`;
is($?, 0, 'nginx -t accepts conf.d/nginx.conf') or diag($out);
like($out, qr/test is successful/, 'nginx says the test is successful');
