/* syscall_ebpf-common: the layout shared by the eBPF program and user space.
 *
 * SYSCALL_LIST maps a syscall number (u32 key) to the number of times it was
 * invoked (u32 value). The Python side mirrors this in common.py. */
#ifndef SYSCALL_EBPF_COMMON_H
#define SYSCALL_EBPF_COMMON_H

typedef unsigned int syscall_key_t;   /* the x86-64 syscall number */
typedef unsigned int syscall_count_t; /* invocations seen */

#define SYSCALL_LIST_MAX_ENTRIES 1024
#define SYSCALL_WRITE 1 /* skipped, as the DragonOS example does */

#endif
