# A C compiler and make: the `faultline` binary's allocator (jemalloc, via tikv-jemalloc-sys)
# is built from C with its own configure and make. Debian's gcc and make; usually present.
apt_install gcc make
