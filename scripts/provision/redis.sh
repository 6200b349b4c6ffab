# redis-server and redis-benchmark (Debian's redis-server, redis-tools) for the Redis fake's
# differential tests, the reference target's cache tests and the Redis benchmark. Tests start
# their own redis-server on a free loopback port and stop it; nothing is left running.
apt_install redis-server redis-tools
