# wrk (Debian's) for the load benchmark (`cargo bench --bench load`), which measures
# faultline's load engine against it on the same fake server in one run.
apt_install wrk
