"""Linux uapi constants and layouts (linux/bpf.h, linux/perf_event.h), shared by both sides of the syscall boundary."""
